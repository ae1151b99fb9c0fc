"""The analysis suite (issue 5): per-layer, per-pair, per-class and per-sample statistics of the
neighbour tables, each a pure function of plain arrays; `stage.run_analysis` assembles the tables."""

from nnts_ray.analysis.stage import AnalysisInputs, AnalysisSettings, run_analysis

__all__ = ["AnalysisInputs", "AnalysisSettings", "run_analysis"]
