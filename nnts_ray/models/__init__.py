"""Networks to analyse: built-ins, torchvision / timm models by name, any nn.Module by path (`zoo`); weights
from checkpoints, explicit pretrained weights or cached on-the-spot training (`build`)."""

from nnts_ray.models.build import build_model, prepare_model

__all__ = ["build_model", "prepare_model"]
