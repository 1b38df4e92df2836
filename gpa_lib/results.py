"""Atomic writes and provenance for every result file the compendium produces.

Every JSON under ``data/results/`` is written through :func:`write_result`, which adds a
``provenance`` block (commit, profile, device, library versions, date, wall time) and replaces
the file atomically, so that an interrupted run never leaves a half-written result behind.

It is also the one home of what a record says about where it was made: the commit
(:func:`project_commit`, ``$GPA_LIB_SOURCE_COMMIT`` for a copy of the tree), the source digest
(:func:`source_digest`), the device and versions (:func:`device_description`), and the GPU's facts
that the GPU scripts store (:func:`torch_device_facts`, :func:`nvidia_smi_facts`,
:func:`software_versions`, :func:`driver_version`, and :func:`gpu_unavailable_reason` when there is no
GPU to measure).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where an installed wheel (Binder's image aside: Colab, ``pip install gpa_lib @ git+...``) keeps the
#: committed results: ``setup.py`` packages ``data/results/*.json`` as ``gpa_lib/stored_results``.
PACKAGED_RESULTS_DIR = Path(__file__).resolve().parent / "stored_results"
#: The notebook runner points chapters elsewhere so that a run never overwrites committed results.
RESULTS_ENV = "GPA_LIB_RESULTS_DIR"


def is_source_checkout(root: Path = REPO_ROOT) -> bool:
    """Is ``gpa_lib`` imported from the project folder (a clone, an editable install)?"""
    return (root / "pyproject.toml").is_file() and (root / "data" / "results").is_dir()


def committed_results_dir() -> Path:
    """The committed results: ``data/results`` of a checkout, else the copy packaged in the wheel."""
    return REPO_ROOT / "data" / "results" if is_source_checkout() else PACKAGED_RESULTS_DIR


RESULTS_DIR = committed_results_dir()


def default_results_dir() -> Path:
    """Where results are written: ``$GPA_LIB_RESULTS_DIR`` when set (the runner sets it), else
    ``data/results`` of a checkout; an installed wheel writes to ``./results`` of the working
    folder, never into its own package data."""
    if RESULTS_ENV in os.environ:
        return Path(os.environ[RESULTS_ENV])
    return RESULTS_DIR if is_source_checkout() else Path.cwd() / "results"


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(
        path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n"
    )


def _jsonable(value: Any) -> Any:
    """Fallback for numpy scalars and arrays, paths and dates inside result dicts."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (Path, _dt.date, _dt.datetime)):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to JSON: {value!r}")


#: Where runs write their results; changes there do not make the work tree dirty (see git_commit).
RESULTS_PATHSPEC = "data/results"
#: The commit a copy of the tree was sent from, named by the caller: the copy on a GPU machine has no
#: ``.git`` of its own (it may even sit inside another checkout, whose HEAD is not this project's).
SOURCE_COMMIT_ENV = "GPA_LIB_SOURCE_COMMIT"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def git_commit(root: str | os.PathLike = REPO_ROOT) -> str:
    """The current commit of the repository whose top level is ``root``, with ``-dirty`` when tracked
    files have uncommitted changes; ``unknown`` outside git.

    Only the project's own repository counts: when ``root`` is a folder inside another repository (a
    copy of the tree without its ``.git``, run from inside some other checkout), that repository's
    HEAD says nothing about this code, and the answer is ``unknown``. Changes under ``data/results/``
    do not count as dirty: a run rewrites those results itself, and the chapters that follow in the
    same run were still computed by the committed code.
    """
    root = Path(root)
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() != root.resolve():
            return "unknown"
        commit = _git(root, "rev-parse", "HEAD")
        dirty = _git(
            root,
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            f":(exclude){RESULTS_PATHSPEC}",
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def code_changed_since(
    commit: str, paths: tuple[str, ...] = ("gpa_lib",), root: str | os.PathLike = REPO_ROOT
) -> bool | None:
    """Whether the files under ``paths`` (relative to ``root``) differ between ``commit`` and the
    working tree: ``True``/``False``, or ``None`` when that cannot be told (no git, not the
    project's own repository, a commit this clone does not hold, ``unknown`` or ``-dirty``)."""
    root = Path(root)
    commit = str(commit or "")
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return None
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() != root.resolve():
            return None
        _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
        changed = subprocess.run(
            ["git", "diff", "--quiet", commit, "--", *paths],
            cwd=root,
            capture_output=True,
            timeout=20,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: False, 1: True}.get(changed)


def project_commit(root: str | os.PathLike = REPO_ROOT) -> str:
    """The commit a result is stored with: ``$GPA_LIB_SOURCE_COMMIT`` when set, else :func:`git_commit`."""
    return os.environ.get(SOURCE_COMMIT_ENV) or git_commit(root)


def source_digest(root: str | os.PathLike | None = None) -> str:
    """A short hash of the library's sources (``gpa_lib/**/*.py`` and the kernels' ``csrc/``).

    The copy of the working tree that a GPU machine runs has no ``.git``: this digest, stored with
    each result, lets anyone check here which commit's code produced it (same digest, same code).
    """
    package = Path(root) if root is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    suffixes = {".py", ".cu", ".cuh", ".h", ".cpp"}
    for path in sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in suffixes):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_identity() -> dict[str, str]:
    """What the GPU runs store beside the provenance block: the commit the caller names
    (``$GPA_LIB_SOURCE_COMMIT``, else ``not given``) and the source digest."""
    return {
        "source_commit": os.environ.get(SOURCE_COMMIT_ENV) or "not given",
        "source_digest": source_digest(),
    }


def device_description() -> dict[str, Any]:
    """What the numbers were measured on: CPU model and count, and the GPU when torch sees one."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
            info["gpu_count"] = torch.cuda.device_count()
        else:
            info["gpu"] = None
    except ImportError:  # pragma: no cover - torch is a hard dependency
        info["gpu"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------- the GPU's facts

#: Every GPU step of ``scripts/gpu_run.sh`` prints this phrase when it cannot run for want of a GPU.
NO_GPU = "needs a CUDA GPU"

#: Read-only ``nvidia-smi --query-gpu`` fields; never a field or option that changes the card's state.
SMI_FIELDS = (
    "name",
    "driver_version",
    "memory.total",
    "pstate",
    "clocks.sm",
    "clocks.max.sm",
    "clocks.mem",
    "clocks.max.mem",
    "power.draw",
    "power.limit",
    "temperature.gpu",
)


def gpu_unavailable_reason() -> str | None:
    """Why nothing can be measured on a GPU here (None: torch sees a CUDA device); starts with
    :data:`NO_GPU`."""
    import torch

    if torch.cuda.is_available():
        return None
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return f"{NO_GPU}: torch.cuda.is_available() is False here (torch {torch.__version__}, {build})"


def gpu_slug(name: str) -> str:
    """A file-name stem of a GPU name: ``'NVIDIA H200'`` -> ``'nvidia_h200'``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown_gpu"


def _run(argv: list[str], timeout: float = 20.0) -> str | None:
    """stdout of a short command, or None when it is missing, fails or hangs."""
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def nvidia_smi_facts(fields: tuple[str, ...] = SMI_FIELDS) -> dict[str, Any]:
    """GPU 0 as nvidia-smi reports it (``{}`` without nvidia-smi); field names as nvidia-smi's."""
    out = _run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"])
    if out is None and fields != ("name", "driver_version"):
        return nvidia_smi_facts(("name", "driver_version"))  # an older nvidia-smi lacks a field
    if not out:
        return {}
    values = [v.strip() for v in out.strip().splitlines()[0].split(",")]
    facts: dict[str, Any] = dict(zip(fields, values, strict=False))
    header = _run(["nvidia-smi"]) or ""
    match = re.search(r"CUDA Version:\s*([0-9.]+)", header)
    if match:
        facts["cuda_version"] = match.group(1)  # the newest CUDA the driver supports
    return facts


def driver_version() -> str:
    """NVIDIA driver release as nvidia-smi reports it, else the CUDA driver API version torch reports."""
    import torch

    release = nvidia_smi_facts(("name", "driver_version")).get("driver_version")
    if release:
        return release
    version = torch._C._cuda_getDriverVersion() if torch.cuda.is_available() else 0
    return f"CUDA driver API {version // 1000}.{version % 1000 // 10}"


def nvcc_version(nvcc: str | None) -> str | None:
    """``release X.Y`` line of ``nvcc --version`` for the compiler at ``nvcc`` (the extension build's:
    :func:`gpa_lib.attention.kernel.cuda.build.find_nvcc`); None without one."""
    out = _run([nvcc, "--version"]) if nvcc else None
    if not out:
        return None
    match = re.search(r"release [^\n]*", out)
    return match.group(0) if match else out.strip().splitlines()[-1]


def software_versions(nvcc: str | None = None) -> dict[str, Any]:
    """torch, its CUDA and cuDNN, the nvcc at ``nvcc``, triton and numpy."""
    from importlib import metadata

    import torch

    versions: dict[str, Any] = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nvcc": nvcc_version(nvcc),
    }
    for name in ("triton", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def torch_device_facts(index: int = 0) -> dict[str, Any]:
    """Name, compute capability, multiprocessors, L2 and memory of CUDA device ``index``."""
    import torch

    props = torch.cuda.get_device_properties(index)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count,
        "l2_cache_bytes": getattr(props, "L2_cache_size", None),
        "total_memory_bytes": props.total_memory,
        "device_count": torch.cuda.device_count(),
    }


def library_versions(
    names: tuple[str, ...] = ("torch", "numpy", "pandas", "scikit-learn", "gpa_lib"),
) -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(
    *, profile: str | None = None, wall_time_s: float | None = None, **extra: Any
) -> dict[str, Any]:
    """The provenance block stored with every result."""
    block = {
        "commit": project_commit(),
        "profile": profile,
        "device": device_description(),
        "versions": library_versions(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
    }
    block.update(extra)
    return block


def write_result(
    name: str,
    payload: dict[str, Any],
    *,
    profile: str | None = None,
    wall_time_s: float | None = None,
    results_dir: str | os.PathLike | None = None,
    **extra: Any,
) -> Path:
    """Write ``payload`` plus provenance to ``<results_dir>/<name>.json`` atomically and return the path.

    ``name`` is a file stem (``"attention_bench_cpu"``), not a path: it may not contain a separator.
    """
    if not name or "/" in name or os.sep in name or name.endswith(".json"):
        raise ValueError(
            f"name={name!r} must be a bare file stem such as 'backtest', without '/' or '.json'"
        )
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    return write_result_file(
        folder / f"{name}.json", payload, profile=profile, wall_time_s=wall_time_s, **extra
    )


def write_result_file(
    path: str | os.PathLike,
    payload: dict[str, Any],
    *,
    profile: str | None = None,
    wall_time_s: float | None = None,
    **extra: Any,
) -> Path:
    """:func:`write_result` to any ``path`` (a user's ``--out``): payload plus provenance, atomically."""
    if "provenance" in payload:
        raise ValueError("payload already has a 'provenance' key; write_result adds it")
    document = {
        **payload,
        "provenance": provenance(profile=profile, wall_time_s=wall_time_s, **extra),
    }
    return atomic_write_json(path, document)


def result_exists(name: str, results_dir: str | os.PathLike | None = None) -> bool:
    """Whether the stored result ``<name>.json`` exists (a benchmark a chapter renders may not have run)."""
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    return (folder / f"{name}.json").exists()


def read_result(name: str, results_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The stored result ``<name>.json``, by default from the committed ``data/results`` (in an
    installed wheel, its packaged copy: :data:`PACKAGED_RESULTS_DIR`).

    The one reader of results JSON. ``$GPA_LIB_RESULTS_DIR`` redirects writes only: a chapter run by
    the book runner writes into a private folder but renders the committed benchmark results.
    """
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    path = folder / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no result {name!r} at {path}; run the script or notebook that writes it"
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(
            f"result file {path} is empty; rerun the script or notebook that writes it"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"result file {path} is not UTF-8 (byte {err.start}): {err.reason}"
        ) from None
    if text.startswith("\ufeff"):
        raise ValueError(
            f"result file {path} starts with a UTF-8 byte-order mark; write it without one"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"result file {path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
            "it may have been cut off: rerun the script or notebook that writes it"
        ) from None
    if not isinstance(document, dict) or "provenance" not in document:
        raise ValueError(f"result file {path} holds no result object with a 'provenance' block")
    return document
