"""The fashion-store simulator with known ground truth (the compendium's default data).

- :mod:`~gpa_lib.recsys.sim.config`: :class:`SimConfig` and the named stores :data:`STORE_PRESETS`;
- :mod:`~gpa_lib.recsys.sim.vocabulary`: the attribute names articles are described with;
- :mod:`~gpa_lib.recsys.sim.world`: calendar, trends, catalogue and customers before day 0;
- :mod:`~gpa_lib.recsys.sim.drift`: the drifting part of customer styles;
- :mod:`~gpa_lib.recsys.sim.days`: the day loop (orders, choices, sizes, returns, stock);
- :mod:`~gpa_lib.recsys.sim.images`: the procedural article images;
- :mod:`~gpa_lib.recsys.sim.truth`: :class:`SimTruth`; :mod:`~gpa_lib.recsys.sim.simulate`: the entry points.
"""

from gpa_lib.recsys.sim.config import STORE_PRESETS, SimConfig
from gpa_lib.recsys.sim.simulate import simulate, simulate_config, simulate_preset
from gpa_lib.recsys.sim.truth import SimTruth

__all__ = [
    "STORE_PRESETS",
    "SimConfig",
    "SimTruth",
    "simulate",
    "simulate_config",
    "simulate_preset",
]
