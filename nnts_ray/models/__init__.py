"""Networks to analyse: built-in architectures, loading and on-the-spot training."""

from nnts_ray.models.build import build_model, prepare_model

__all__ = ["build_model", "prepare_model"]
