"""Probe points: which intermediate outputs of a model are recorded (`select`), how they are captured
in one forward pass (`capture`), and how each becomes rows of a feature matrix (`reduce`)."""

from nnts_ray.probes.capture import Extractor
from nnts_ray.probes.reduce import Reducer
from nnts_ray.probes.select import candidates, probe_points

__all__ = ["Extractor", "Reducer", "candidates", "probe_points"]
