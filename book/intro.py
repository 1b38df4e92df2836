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
# # Attention copying and dynamic customers
#
# This book is an *executable research compendium*: every chapter is a notebook that the build runs
# from scratch, and every number in its prose is computed by that run and glued into the text. It
# reproduces and extends three papers from Zalando Research, and ships their methods as an importable
# Python library, `gpa_lib`.
#
# ## What the book finds
#
# Each row is one claim of the papers, with what this book measured and the verdict its chapter
# states; the numbers are read from the chapters of this very build (this page runs after them), on
# the data each chapter names: synthetic unless it says otherwise. "(ours)" marks a question this
# book adds, not a claim of a paper. The papers themselves are summarised below the table.

# %% tags=["parameters", "remove-cell"]
profile = "full"

# %% tags=["remove-cell"]
import os
from pathlib import Path

from IPython.display import Markdown
from myst_nb import glue

from gpa_lib.book.headlines import headline_table, markdown_table

# The runner names the run's summary in an environment variable; the executed chapters sit beside it.
run_summary = os.environ.get("GPA_BOOK_RUN_SUMMARY", "")
executed = Path(run_summary).parent if run_summary else Path(".")
glue("intro_headlines", Markdown(markdown_table(headline_table(executed))), display=False)

# %% [markdown]
# ```{glue:md} intro_headlines
# :format: myst
# ```
#
# ## The papers and what they claim
#
# **Grid Partitioned Attention** {cite}`gpa2021`. Full attention over an $H \times W$ image costs
# $O((HW)^2)$ time and memory, out of reach at high resolution. GPA groups queries into grid cells; each
# cell picks a few key blocks by cheap attention between *low-resolution* (average-pooled) queries and
# keys, and then attends densely to the keys of those blocks only. The claim: with an inductive bias that
# fits images (related detail lies in few, compact regions), GPA approximates full attention closely at a
# small fraction of its memory, and makes attention-based detail copying possible at high resolution.
#
# **Attention copying for pose morphing** (same paper). A generator re-renders a person in a new pose by
# *copying* appearance from the source image through GPA, instead of hallucinating texture. The authors
# never released it; this compendium does.
#
# **Fashion DNA** {cite}`fashiondna2016`. A network maps an article's attributes (and images) to an
# embedding, its "DNA"; a customer's style vector times an article's DNA gives the purchase likelihood.
# Because DNA comes from content, it scores brand-new articles (cold start) as well as old ones.
#
# **An LSTM dynamic customer model** {cite}`lstmcustomer2017`. A recurrent network reads a customer's
# purchase history as a sequence of Fashion DNA vectors and predicts their *current* style, so that
# recommendations follow changing tastes; the paper reports that it beats static collaborative
# filtering and popularity in backtests on Zalando's sales data.
#
# ## What this compendium adds
#
# - A GPA layer with exact semantics, a readable reference implementation that doubles as the test
#   oracle, a FlexAttention backend, a fused CUDA kernel, and a complexity model checked against
#   measured memory.
# - An open attention-copying pose-morphing generator with baselines, trained and evaluated here.
# - A fashion-store simulator with known ground truth, and temporal backtests of Fashion DNA and the
#   LSTM model against static collaborative filtering, popularity, practitioners' libraries, a
#   modern sequential model (SASRec) and the simulator's own choice model (the ceiling), with candidates taken from the catalogue at the cutoff
#   and intervals over cutoffs, customers and training seeds.
#
# ## What is synthetic, and what is measured where
#
# Zalando's sales data is private and DeepFashion cannot be downloaded by the build, so **the default
# data is synthetic**: procedurally rendered people in two poses, and a simulated fashion store with the
# properties the papers describe (short article lives, small stocks, frequent returns, drifting tastes).
# Each chapter says which figures come from synthetic data and on what hardware they were measured;
# CPU figures were measured on the machine that built the book (see {doc}`reproduce`), and GPU figures
# only appear where a run on a GPU produced them. Loaders for the real datasets (DeepFashion in the
# Pose-Transfer layout, the public H&M transactions) are part of the library and tested on small
# fixtures.
#
# ## References
#
# ```{bibliography}
# ```
