"""Every static figure of chapters 3, 4 and 5 drawn from a committed ``data/results/*.json``
carries the provenance footer of :mod:`gpa_lib.stamp`; the same figure of a payload without
provenance (a result computed on the spot) or without a named source carries none."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gpa_lib.results import read_result  # noqa: E402
from gpa_lib.stamp import stamp_footer, stamp_text  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _fresh(payload):
    """``payload`` as a run would return it before :func:`gpa_lib.results.write_result`."""
    return {key: value for key, value in payload.items() if key != "provenance"}


def _figure(made):
    """The figure of what a study function returns: a figure, a Study or a tuple holding one."""
    from matplotlib.figure import Figure

    if isinstance(made, Figure):
        return made
    if hasattr(made, "figure"):
        return made.figure
    (figure,) = [part for part in made if isinstance(part, Figure)]
    return figure


def _pose_plot(name):
    from gpa_lib.pose import figures

    return getattr(figures, name)


def _pose_study(name):
    from gpa_lib.pose import studies

    return getattr(studies, name)


def _recsys(module, name):
    import importlib

    return getattr(importlib.import_module(f"gpa_lib.recsys.eval.{module}"), name)


#: (committed result, the figure function given the source by keyword) per plot function.
PLOTS = [
    ("pose_seeds", lambda: _pose_plot("plot_accuracy")),
    ("pose_tradeoff", lambda: _pose_plot("plot_tradeoff")),
    ("pose_scaling", lambda: _pose_plot("plot_scaling")),
    ("misspecified", lambda: _recsys("misspecified", "plot_misspecified")),
    ("dna_variants", lambda: _recsys("dna_variants", "plot_variants")),
]

#: (committed result, the study function that stamps the figure it builds from that payload).
STUDIES = [
    ("pose_seeds", lambda: _pose_study("accuracy_study")),
    ("pose_tradeoff", lambda: _pose_study("tradeoff_study")),
    ("pose_scaling", lambda: _pose_study("scaling_study")),
    ("misspecified", lambda: _recsys("dna_studies", "misspecified_section")),
    ("dna_variants", lambda: _recsys("dna_studies", "variants_study")),
    ("drift", lambda: _recsys("lstm_style_studies", "drift_control_study")),
    ("backtest", lambda: _recsys("lstm_studies", "per_cutoff_study")),
    ("backtest", lambda: _recsys("lstm_studies", "segments_study")),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "plot"), PLOTS, ids=[n for n, _ in PLOTS])
def test_a_plot_given_its_source_names_it(name, plot):
    payload = read_result(name)
    (text,) = stamp_footer(plot()(payload, source=name))
    assert text.startswith(stamp_text(f"{name}.json", payload["provenance"]))
    assert stamp_footer(plot()(payload)) == []
    assert stamp_footer(plot()(_fresh(payload), source=name)) == []


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("name", "study"), STUDIES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(STUDIES)]
)
def test_a_study_stamps_the_figure_of_a_committed_result(name, study):
    payload = read_result(name)
    (text,) = stamp_footer(_figure(study()(payload)))
    assert text.startswith(stamp_text(f"{name}.json", payload["provenance"]))
    if name in ("drift", "pose_seeds", "pose_tradeoff", "pose_scaling"):
        return  # these studies cite the payload's provenance (or its run record) themselves
    assert stamp_footer(_figure(study()(_fresh(payload)))) == []
