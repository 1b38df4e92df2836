# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproduce this book
#
# Every number in this book was computed by the notebooks when the book was built; none is typed by
# hand. This page is itself executed last: it reads the timings of the run that produced the pages you
# are reading.
#
# ## Two commands
#
# ```bash
# make book   # create .venv, install the pinned environment, execute every chapter (profile full), render
# make test   # lint, unit tests, every chapter under the smoke profile, and a warnings-as-errors book build
# ```
#
# ## Profiles
#
# The chapters take their parameters from one cell tagged `parameters`; `notebooks/profiles.yml`
# overrides them per profile:
#
# | profile | what it is for | where |
# |---|---|---|
# | `smoke` | CI: proves every chapter runs, tiny sizes, seconds per notebook | any CPU |
# | `full`  | the published book: every figure and table, minutes per notebook | a 2-core CPU |
# | `gpu`   | paper scale: high resolutions, the CUDA kernel, long training | one CUDA GPU |
#
# ```bash
# .venv/bin/python -m gpa_lib.book run --profile full --only 01_gpa_complexity   # one chapter
# .venv/bin/python -m gpa_lib.book build --profile full                          # render again
# .venv/bin/papermill notebooks/01_gpa_complexity.ipynb out.ipynb -p profile smoke  # by hand
# ```
#
# Chapters write their results as JSON with provenance (commit, device, library versions, date, wall
# time) under `_build/executed/<profile>/results/`; the run's summary says for each file whether its
# numbers agree with the committed copy in `data/results/` (within a relative 1e-6, timings and
# provenance left out). A run never rewrites the committed files: refreshing them is its own command,
# `make results` (`python -m gpa_lib.book run --profile full --publish`).

# %% tags=["parameters"]
profile = "full"

# %%
import json
import os
from pathlib import Path

import pandas as pd
from myst_nb import glue

from gpa_lib.results import device_description

# The runner names the run's summary in an environment variable (no build path in this page).
run_summary = os.environ.get("GPA_BOOK_RUN_SUMMARY", "")
summary = (
    json.loads(Path(run_summary).read_text())
    if run_summary
    else {"profile": profile, "notebooks": []}
)
chapters = [r for r in summary["notebooks"] if r["name"] not in ("intro", "reproduce")]  # pages
times = pd.DataFrame(
    chapters, columns=["name", "chapter_s", "seconds", "status", "executed_at"]
).rename(
    columns={
        "name": "notebook",
        "chapter_s": "chapter ran in (s)",
        "seconds": "wall time (s)",
        "executed_at": "executed (UTC)",
    }
)
# Whole seconds, as the chapters' last lines state them ("This chapter ran in N s").
times["chapter ran in (s)"] = [
    "—" if pd.isna(s) else f"{s:.0f}" for s in times["chapter ran in (s)"]
]
device = device_description()
glue("repro_profile", summary["profile"], display=False)
glue("repro_n_notebooks", len(chapters), display=False)
glue("repro_total_s", float(times["wall time (s)"].sum()) if len(times) else 0.0, display=False)
glue("repro_cpu", f"{device['cpu']} ({device['cpu_count']} logical cores)", display=False)
glue("repro_gpu", device["gpu"] or "none", display=False)
times

# %% [markdown]
# ## The run behind this build
#
# The pages of this build come from {glue:text}`repro_n_notebooks` chapter notebook(s) executed under
# the {glue:text}`repro_profile` profile in {glue:text}`repro_total_s:.1f` seconds of wall time in total,
# on {glue:text}`repro_cpu`; GPU: {glue:text}`repro_gpu`. The table above lists each notebook's wall
# time as measured by the runner (kernel start included) and when it ran; *chapter ran in* is the time
# the chapter measured itself and states in its last line (empty for a chapter that states none), read
# from the same executed notebook, so the two pages cannot disagree. `python -m gpa_lib.book run`
# executes a chapter again only when its source, parameters, the library, the pinned environment or a
# data file it reads changed, and otherwise reuses the executed notebook (`--force` runs them all).
#
# ## Real data
#
# The chapters run on built-in synthetic data by default, so the book builds anywhere without
# downloads. Readers with the real datasets point the loaders at them:
#
# - **DeepFashion** in the Pose-Transfer layout (PATN, GFLA): see the data card [`data/deepfashion.md`](../data/deepfashion.md).
# - **H&M Personalized Fashion Recommendations** transactions: see the data card [`data/hm.md`](../data/hm.md).
