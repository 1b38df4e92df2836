"""Sales data: the :class:`SalesData` model and where it comes from.

- :mod:`~gpa_lib.recsys.data.sales`: :class:`SalesData` (tables, views, validation);
- :mod:`~gpa_lib.recsys.data.tables`: column names and coercion of user tables to the model's dtypes;
- :mod:`~gpa_lib.recsys.data.parquet`: ``save`` / ``load`` as a folder of Parquet tables;
- :mod:`~gpa_lib.recsys.data.interactions`: the generic interactions format (user, item, time and
  attribute tables; ``data/interactions.md``), :mod:`~gpa_lib.recsys.data.layouts`: ``load_data``
  for any folder (interactions, H&M or Parquet, detected);
- :mod:`~gpa_lib.recsys.data.hm`: the H&M loader (:mod:`~gpa_lib.recsys.data.csvfiles`: its CSV
  checks; :mod:`~gpa_lib.recsys.data.hm_synthetic`: an H&M-format set of any size and an
  independent count of a file); :mod:`~gpa_lib.recsys.data.toy`: a tiny store
  whose right answer is known (a test fixture); :mod:`~gpa_lib.recsys.data.stats`: weekly sales,
  returns, baskets, article life and their plots.
"""

from gpa_lib.recsys.data.hm import load_hm
from gpa_lib.recsys.data.interactions import load_interactions
from gpa_lib.recsys.data.layouts import load_data
from gpa_lib.recsys.data.parquet import load, save
from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.data.tables import ARTICLE_ATTRIBUTES, SIZES

__all__ = [
    "ARTICLE_ATTRIBUTES",
    "SIZES",
    "SalesData",
    "load",
    "load_data",
    "load_hm",
    "load_interactions",
    "save",
]
