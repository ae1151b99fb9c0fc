"""Datasets as `SampleSet`s: stable sample ids, labels, model-ready images. One loader per source:
`sources` (digits, synthetic), `benchmarks` (MNIST, Fashion-MNIST, CIFAR-10 files), `images` (image folder,
Parquet table)."""

from nnts_ray.data.base import SampleSet, load_dataset

__all__ = ["SampleSet", "load_dataset"]
