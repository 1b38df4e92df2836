"""gpa_lib: the library behind the compendium.

Subpackages:
    gpa_lib.attention  Grid Partitioned Attention (reference, flex and CUDA backends)
    gpa_lib.pose       pose morphing with attention copying
    gpa_lib.recsys     sales data, Fashion DNA, the LSTM customer model, backtests
    gpa_lib.book       the notebook pipeline (papermill + Jupyter Book)
"""

__version__ = "0.1.0"
