"""The comparison with the authors' code: plumbing and errors, on a stand-in for their module.

The authors' ``GPA_module.py`` is never part of this project; the stand-in below has its interface
(``GPA_module(c, c2, m, euclid=..., kappa=..., splitM=..., SHIERARCHY=...)._doAtt(Q, K, V, d, aspect,
psize)`` on (B, C, H, W) maps) and computes GPA with our reference backend.
"""

from __future__ import annotations

import json

import pytest

from gpa_lib.bench import official

STAND_IN = """
import torch
from gpa_lib.attention import gpa_attention


class GPA_module:
    def __init__(self, c, c2, m, euclid=True, kappa=2, splitM=32, SHIERARCHY=64):
        self.kappa, self.splitM, self.low = kappa, splitM, SHIERARCHY

    def _doAtt(self, Q, KEY, VAL, d, aspect, psize):
        heads = [t.permute(0, 2, 3, 1)[:, None] for t in (Q, KEY, VAL)]
        cell = d * (self.low // self.splitM)
        out = gpa_attention(*heads, pool=d, cell=cell, topk=self.kappa, affinity="euclid",
                            backend="reference")
        return out[:, 0].permute(0, 3, 1, 2)
"""


@pytest.fixture
def stand_in(tmp_path):
    (tmp_path / "GPA_module.py").write_text(STAND_IN)
    return tmp_path


def test_the_authors_settings_follow_their_layer_defaults():
    cfg = official.OfficialBenchConfig()
    assert official.settings(cfg, 128) == {"pool": 2, "cell": 4, "topk": 8}
    assert official.settings(cfg, 512) == {"pool": 8, "cell": 16, "topk": 8}


def test_comparison_records_differences_and_times(stand_in, tmp_path, monkeypatch):
    monkeypatch.setenv("GPA_LIB_RESULTS_DIR", str(tmp_path / "results"))
    assert official.main(["--path", str(stand_in), "--sizes", "32", "--repeats", "1"]) == 0
    result = json.loads((tmp_path / "results" / "official_gpa.json").read_text())
    (record,) = result["records"]
    assert record["size"] == 32 and record["pool"] == 1 and record["cell"] == 2
    for method in official.METHODS:
        assert record[f"{method}_max_abs_diff"] < 1e-5
        assert record[f"{method}_median_s"] > 0
    assert "commit" in result["provenance"]


def test_a_folder_without_their_module_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--path .*: no GPA_module.py there"):
        official.load_authors_module(tmp_path)
    (tmp_path / "GPA_module.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no GPA_module class"):
        official.load_authors_module(tmp_path)
