"""Training of the pose generators: resumable, data-parallel, with periodic evaluation.

    python -m gpa_lib.pose.train --preset gpa-full --out runs/gpa-full
    torchrun --nproc_per_node 2 -m gpa_lib.pose.train --preset gpa-full --out runs/gpa-full

Reproducibility and resumption:

- The weights start from ``torch.manual_seed(config.seed)``. The pairs of step ``t`` are a pure
  function of ``(seed, t)``: epoch ``e = t // steps_per_epoch`` shuffles all pairs with the seed
  ``(seed, e)`` and step ``t`` takes its slice; a data-parallel process takes every ``world``-th pair
  of that slice. There is no loader state to save.
- A checkpoint (``out_dir/checkpoint.pt``, written atomically: temporary file, fsync, rename) holds the
  model, the optimizer (and the discriminator and its optimizer), the step, the history, the training
  time and the RNG states of torch, CUDA, numpy and Python. A run started again with the same config
  and ``out_dir`` continues from it; a killed run resumed this way ends with the same weights as an
  uninterrupted one (``tests/test_pose_train.py`` checks it).
- A checkpoint holds only tensors, numbers, strings, lists and dicts (the numpy and Python RNG states
  as integer tensors and numbers), and is read with ``torch.load(weights_only=True)``: a checkpoint
  from elsewhere cannot run code, and one that holds any other object is refused with a
  ``ValueError`` naming the file.
- Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel with gloo on
  CPU and nccl on GPU; only rank 0 writes checkpoints, evaluates and shows progress.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from gpa_lib.pose.config import TRAIN_PRESETS, TrainConfig, preset
from gpa_lib.pose.data import DeepFashionPairs, PairCache, SyntheticPoses, cached
from gpa_lib.pose.data.pair import model_inputs
from gpa_lib.pose.losses import GeneratorLoss, PatchDiscriminator, lsgan_discriminator_loss
from gpa_lib.pose.metrics import METRIC_NAMES, evaluate, summarize
from gpa_lib.pose.models import build_model, count_parameters
from gpa_lib.results import atomic_write_bytes, atomic_write_json

CHECKPOINT = "checkpoint.pt"
# Fields that may change between a run and its resumption (they do not change the trajectory).
RESUMABLE_CHANGES = ("steps", "eval_every", "checkpoint_every", "num_threads", "device")


# --- Data -----------------------------------------------------------------------------------------


def load_data(
    config: TrainConfig, cache_dir: str | os.PathLike | None = None, num_workers: int = 0
) -> tuple[PairCache, PairCache]:
    """The training and held-out pairs of ``config`` as tensor caches (read from ``cache_dir`` if there).

    Synthetic: ``SyntheticPoses(n_train, size, data_seed)`` and ``SyntheticPoses(n_test, size,
    test_seed)``. DeepFashion: the first ``n_train`` train pairs and ``n_test`` test pairs at
    (256, 176).
    """
    from torch.utils.data import Subset

    if config.data == "synthetic":
        train_set = SyntheticPoses(
            config.n_train, config.size, config.data_seed, views=config.views
        )
        test_set = SyntheticPoses(config.n_test, config.size, config.test_seed, views=config.views)
        tag = f"synthetic-{config.views}-{config.size}px"
        names = (
            f"{tag}-seed{config.data_seed}-n{config.n_train}",
            f"{tag}-seed{config.test_seed}-n{config.n_test}",
        )
    else:
        train_set = DeepFashionPairs(config.deepfashion_root, "train")
        test_set = DeepFashionPairs(config.deepfashion_root, "test")
        train_set = Subset(train_set, range(min(config.n_train, len(train_set))))
        test_set = Subset(test_set, range(min(config.n_test, len(test_set))))
        for subset in (train_set, test_set):
            subset.sigma = subset.dataset.sigma
        names = (f"deepfashion-train-n{len(train_set)}", f"deepfashion-test-n{len(test_set)}")
    paths = [None, None]
    if cache_dir is not None:
        paths = [Path(cache_dir) / f"{name}.pt" for name in names]
    return (
        cached(train_set, paths[0], num_workers=num_workers),
        cached(test_set, paths[1], num_workers=num_workers),
    )


def batch_indices(
    seed: int, step: int, n: int, batch_size: int, rank: int = 0, world: int = 1
) -> torch.Tensor:
    """The pairs that process ``rank`` of ``world`` trains on at ``step`` (a LongTensor).

    Epoch ``step // (n // batch_size)`` is a permutation of the ``n`` pairs drawn with the seed
    ``(seed, epoch)``; the global batch is its slice for ``step``, and each process takes every
    ``world``-th pair of it.
    """
    steps_per_epoch = n // batch_size
    epoch, position = divmod(step, steps_per_epoch)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator)
    return order[position * batch_size : (position + 1) * batch_size][rank::world]


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then a cosine from ``lr`` to ``lr * lr_final_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    low = config.lr * config.lr_final_ratio
    return low + 0.5 * (config.lr - low) * (1 + math.cos(math.pi * progress))


# --- Distributed set-up -----------------------------------------------------------------------------


@dataclass
class Runtime:
    """Where this process runs: ``rank`` of ``world`` processes, on ``device``."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this call initialised the process group and tears it down

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(config: TrainConfig) -> Runtime:
    """Read torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but torch sees no CUDA device")
    device = torch.device("cuda", local_rank) if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(device)
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
        owns = True
    if world > 1 and config.batch_size % world:
        raise ValueError(f"batch_size={config.batch_size} must be a multiple of WORLD_SIZE={world}")
    return Runtime(rank=rank, world=world, device=device, owns_group=owns)


# --- Checkpoints ------------------------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
    """The RNG states of torch, CUDA, numpy and Python as tensors and numbers (``weights_only`` loads them).

    numpy's legacy state ``("MT19937", keys (624,) uint32, pos, has_gauss, cached_gaussian)`` keeps
    its keys as an int64 tensor; Python's ``(version, internal (625 ints), gauss_next)`` keeps its
    internal state as an int64 tensor. Every value is exact, so a restored state draws the same.
    """
    bit_generator, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(bit_generator),
            "keys": torch.from_numpy(keys.astype(np.int64)),  # (624,)
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),  # (625,)
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states that :func:`_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["bit_generator"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate(
        (
            python_state["version"],
            tuple(python_state["internal"].tolist()),
            python_state["gauss_next"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` of ``state`` to ``path`` atomically (temporary file, fsync, rename).

    ``state`` must hold only what :func:`load_checkpoint` accepts: tensors, numbers, strings, None,
    and lists, tuples and dicts of them.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``path``, read with ``torch.load(weights_only=True)`` onto the CPU.

    Only tensors, numbers, strings, None, and lists, tuples and dicts of them are read, so a
    checkpoint from someone else cannot run code. A file that holds anything else (a pickled object;
    also a checkpoint of a version that stored numpy's RNG state as an array) raises a ``ValueError``
    naming the file, without building that object.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is long and suggests weights_only=False; keep the line that says what.
        lines = [line.strip() for line in str(err).splitlines()]
        what = next((line for line in lines if "WeightsUnpickler error" in line), lines[0])
        raise ValueError(
            f"{path} is refused: it holds objects other than tensors, numbers, strings, lists and "
            "dicts, and checkpoints are read with weights_only=True so that a file cannot run code. "
            "If it is your own checkpoint from an older version, start afresh (resume=False or "
            f"another out_dir). {what}"
        ) from err


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    now = config.to_dict()
    differing = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if differing:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in differing)
        raise ValueError(
            f"{path} was written by another config ({detail}); use another out_dir or resume=False"
        )


# --- Training ---------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """A trained model and how it got there."""

    model: nn.Module  # the generator (unwrapped from DDP), in eval mode
    config: TrainConfig
    history: dict[str, list]  # "step", "loss", "lr", and "eval_step" with one list per val metric
    train_time_s: (
        float  # seconds of optimisation steps (evaluation excluded), summed over resumptions
    )
    steps_done: int
    resumed_from: int  # the step the run resumed from (0: fresh start)
    parameters: int


def _new_history() -> dict[str, list]:
    return {
        "step": [],
        "loss": [],
        "lr": [],
        "eval_step": [],
        **{f"val_{m}": [] for m in METRIC_NAMES},
    }


def predict(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's prediction of ``batch["target"]``: (B, 3, H, W) from a batch of pair items."""
    return model(*model_inputs(batch))


def evaluate_model(
    model: nn.Module,
    data: PairCache,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    limit: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-pair metrics (:data:`~gpa_lib.pose.metrics.METRIC_NAMES`) of ``model`` on ``data``."""
    was_training = model.training
    model.eval()
    try:
        return evaluate(lambda b: predict(model, b), data.batches(batch_size, device, limit))
    finally:
        model.train(was_training)


def train(
    config: TrainConfig,
    train_data: PairCache,
    val_data: PairCache | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    callback=None,
    description: str | None = None,
) -> TrainResult:
    """Train the generator of ``config`` on ``train_data``; evaluate on ``val_data[:n_val]``.

    ``out_dir`` receives ``checkpoint.pt`` every ``checkpoint_every`` steps and at the end; with
    ``resume`` an existing checkpoint there is continued (its config must match, except
    :data:`RESUMABLE_CHANGES`). ``callback(step, result_so_far)`` runs after every step (after its
    checkpoint); an exception there stops the run as a crash would. Under torchrun every process
    calls this function.
    """
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    rt = setup_runtime(config)
    if len(train_data) < config.batch_size:
        raise ValueError(
            f"train_data has {len(train_data)} pairs, fewer than batch_size={config.batch_size}"
        )
    torch.manual_seed(config.seed)
    model = build_model(config.model).to(rt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    loss_fn = GeneratorLoss(config).to(rt.device)
    disc = disc_opt = None
    if config.gan_weight > 0:
        disc = PatchDiscriminator(config.model.image_channels + config.model.pose_channels).to(
            rt.device
        )
        disc_opt = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=(0.5, 0.99))
    history, step, train_time = _new_history(), 0, 0.0
    ckpt_path = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    if resume and ckpt_path is not None and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        _check_resumable(state["config"], config, ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if disc is not None:
            disc.load_state_dict(state["discriminator"])
            disc_opt.load_state_dict(state["disc_optimizer"])
        history, step, train_time = state["history"], state["step"], state["train_time_s"]
        _set_rng_state(state["rng"])
    resumed_from = step
    net = model
    if rt.distributed:
        net = nn.parallel.DistributedDataParallel(model)
        if disc is not None:
            disc = nn.parallel.DistributedDataParallel(disc)

    def result() -> TrainResult:
        return TrainResult(
            model, config, history, train_time, step, resumed_from, count_parameters(model)
        )

    def checkpoint() -> None:
        if ckpt_path is not None and rt.main:
            save_checkpoint(
                ckpt_path,
                {
                    "config": config.to_dict(),
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "discriminator": None if disc is None else _unwrap(disc).state_dict(),
                    "disc_optimizer": None if disc_opt is None else disc_opt.state_dict(),
                    "history": history,
                    "train_time_s": train_time,
                    "rng": _rng_state(),
                },
            )
        if rt.distributed:
            dist.barrier()

    def validate() -> None:
        if val_data is None or not rt.main:
            return
        values = evaluate_model(
            model, val_data, batch_size=config.batch_size, device=rt.device, limit=config.n_val
        )
        history["eval_step"].append(step)
        for name in METRIC_NAMES:
            history[f"val_{name}"].append(float(values[name].mean()))

    bar = tqdm(
        total=config.steps,
        initial=step,
        disable=not (progress and rt.main),
        desc=description or "train",
        dynamic_ncols=True,
    )
    model.train()
    try:
        while step < config.steps:
            start = time.perf_counter()
            index = batch_indices(
                config.seed, step, len(train_data), config.batch_size, rt.rank, rt.world
            )
            batch = train_data.batch(index, rt.device)
            lr = learning_rate(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pred = predict(net, batch)
            fake_logits = None
            if disc is not None:
                for group in disc_opt.param_groups:
                    group["lr"] = lr
                # One discriminator forward on real and generated pairs together (one DDP pass).
                logits = disc(
                    torch.cat([batch["target"], pred.detach()]),
                    torch.cat([batch["target_pose"], batch["target_pose"]]),
                )
                real_logits, generated_logits = logits.chunk(2)
                d_loss = lsgan_discriminator_loss(real_logits, generated_logits)
                disc_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                disc_opt.step()
                # The generator's adversarial term goes through the bare, frozen discriminator.
                judge = _unwrap(disc).requires_grad_(False)
                fake_logits = judge(pred, batch["target_pose"])
                judge.requires_grad_(True)
            loss, terms = loss_fn(pred, batch, fake_logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            train_time += time.perf_counter() - start
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            history["lr"].append(lr)
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
            if config.eval_every and step % config.eval_every == 0 and step < config.steps:
                validate()
            if (
                config.checkpoint_every
                and step % config.checkpoint_every == 0
                and step < config.steps
            ):
                checkpoint()
            if callback is not None:
                callback(step, result())
        if not history["eval_step"] or history["eval_step"][-1] != step:
            validate()
        checkpoint()
    finally:
        bar.close()
        if rt.owns_group:
            dist.destroy_process_group()
    model.eval()
    return result()


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def summary(values: dict[str, np.ndarray]) -> dict[str, dict]:
    """:func:`~gpa_lib.pose.metrics.summarize` of every per-pair metric."""
    return {name: summarize(v) for name, v in values.items()}


# --- Command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpa_lib.pose.train",
        description="Train a pose-morphing generator (resumable; torchrun for data parallelism).",
    )
    parser.add_argument(
        "--preset",
        required=True,
        choices=sorted(TRAIN_PRESETS),
        help="named configuration <model>-<scale> (gpa_lib.pose.config.TRAIN_PRESETS)",
    )
    parser.add_argument("--out", required=True, help="run folder: checkpoint.pt and metrics.json")
    parser.add_argument("--steps", type=int, help="optimisation steps (overrides the preset)")
    parser.add_argument("--batch-size", type=int, help="pairs per step over all processes")
    parser.add_argument("--n-train", type=int, help="training pairs")
    parser.add_argument("--n-test", type=int, help="held-out pairs")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--seed", type=int, help="seed of the weights and the data order")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--num-threads", type=int, help="torch CPU threads per process (0: default)"
    )
    parser.add_argument("--gan-weight", type=float, help="PatchGAN loss weight (0: off)")
    parser.add_argument("--perceptual-weight", type=float, help="VGG19 perceptual loss weight")
    parser.add_argument("--perceptual-weights", help="local path of torchvision VGG19 weights")
    parser.add_argument(
        "--deepfashion",
        metavar="ROOT",
        help="train on DeepFashion in the Pose-Transfer layout at ROOT",
    )
    parser.add_argument("--cache-dir", help="folder for the tensor caches of the pairs")
    parser.add_argument(
        "--no-resume", action="store_true", help="start afresh even if a checkpoint exists"
    )
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = preset(args.preset)
    changes = {}
    for name in (
        "steps",
        "batch_size",
        "n_train",
        "n_test",
        "lr",
        "seed",
        "device",
        "num_threads",
        "gan_weight",
        "perceptual_weight",
        "perceptual_weights",
    ):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.deepfashion:
        changes.update(data="deepfashion", deepfashion_root=args.deepfashion)
    if "n_test" in changes:
        changes["n_val"] = min(config.n_val, changes["n_test"])
    return config.replace(**changes)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = config_from_args(args)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    rank = int(os.environ.get("RANK", "0"))
    train_data, test_data = load_data(config, args.cache_dir)
    result = train(
        config,
        train_data,
        test_data,
        out_dir=args.out,
        resume=not args.no_resume,
        progress=not args.no_progress,
        description=args.preset,
    )
    if rank == 0:
        values = evaluate_model(
            result.model,
            test_data,
            batch_size=config.batch_size,
            device=next(result.model.parameters()).device,
        )
        report = {
            "preset": args.preset,
            "config": config.to_dict(),
            "steps": result.steps_done,
            "parameters": result.parameters,
            "train_time_s": result.train_time_s,
            "test": summary(values),
        }
        atomic_write_json(Path(args.out) / "metrics.json", report)
        print(json.dumps({k: round(v["mean"], 4) for k, v in report["test"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
