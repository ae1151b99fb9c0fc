"""Datasets as `SampleSet`s: stable sample ids, labels, model-ready images. One loader per source."""

from nnts_ray.data.base import SampleSet, load_dataset

__all__ = ["SampleSet", "load_dataset"]
