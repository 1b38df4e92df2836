"""gpa_lib: the library behind the compendium.

Subpackages:
    gpa_lib.attention  Grid Partitioned Attention: layer, backends/, kernel/ (CUDA and CPU), analysis/
    gpa_lib.pose       pose morphing with attention copying
    gpa_lib.recsys     sales data, Fashion DNA, the LSTM customer model, backtests
    gpa_lib.book       the notebook pipeline (papermill + Jupyter Book)
    gpa_lib.bench      benchmark scripts writing JSON with provenance (python -m gpa_lib.bench)
    gpa_lib.results    atomic JSON results with provenance, machine facts and the source digest
    gpa_lib.measure    the one timer (CPU clock or CUDA events), peak memory, the machine's ceilings
"""

__version__ = "0.1.0"

# The book runner records which committed results a chapter reads (gpa_lib/read_log.py).
from gpa_lib.read_log import install_from_env as _install_read_log  # noqa: E402

_install_read_log()
