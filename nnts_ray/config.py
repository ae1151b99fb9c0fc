"""Typed configuration: the Hydra schema and the plain objects every stage receives.

Hydra composes `conf/` against these dataclasses (unknown keys and wrong types are rejected by
OmegaConf's structured-config mode). `RunConfig.from_hydra` turns the composed `DictConfig` into
plain, validated dataclasses exactly once, at the command-line edge: nothing below it — and nothing
shipped to a Ray actor — ever sees a `DictConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

METRICS = ("l2", "cosine")
REDUCTIONS = ("flatten", "avgpool", "random_projection")
PROBE_MODES = ("atomic", "modules")
DATASETS = ("digits", "synthetic", "mnist", "fashion_mnist", "cifar10", "image_folder", "parquet")


class ConfigError(ValueError):
    """A bad value from the user: the message names the value and what is allowed."""


@dataclass
class DatasetConfig:
    name: str = "digits"
    root: Optional[str] = None  # directory (mnist/cifar/image_folder) or file (parquet)
    split: str = "train"
    n_samples: Optional[int] = None  # seeded subsample (stratified by label when labels exist)
    stratified: bool = True
    seed: int = 0
    image_size: Optional[int] = None  # resize square images to this side; None = the model's input size
    # synthetic: seeded images on a low-intrinsic-dimension manifold (clusters, then a random map)
    n: int = 2000
    intrinsic_dim: int = 8
    n_classes: int = 10
    download: bool = False  # only when explicitly asked, and only where the machine is online


@dataclass
class TrainConfig:
    """Training on the spot for built-in models that come without a checkpoint."""

    enabled: bool = True
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.003
    seed: int = 0


@dataclass
class ModelConfig:
    name: str = "lenet5"
    arch: str = "lenet5"  # lenet5 | small_resnet | torchvision:<name> | timm:<name> | target
    target: Optional[str] = None  # import path of any nn.Module class, for arch=target
    kwargs: Dict[str, Any] = field(default_factory=dict)
    checkpoint: Optional[str] = None  # local state_dict file, loaded with weights_only=True
    train: TrainConfig = field(default_factory=TrainConfig)
    probe_mode: str = "atomic"  # atomic: every torch.fx node (the paper); modules: leaf module outputs
    probes: List[str] = field(default_factory=lambda: ["*"])  # names or glob patterns, in chain order
    reduction: str = "flatten"
    projection_dim: int = 256  # for reduction=random_projection
    batch_size: int = 256
    in_channels: Optional[int] = None  # None: taken from the dataset
    input_size: int = 32


@dataclass
class KnnConfig:
    metric: str = "l2"
    index: str = "exact"  # exact | a FAISS index_factory string (approximate, recall measured)
    shards: Optional[int] = None  # database shards per query; None/1: each actor holds the whole
    # database and query blocks are spread over actors (fastest); >1: the database is split over that
    # many actors and per-shard top-k are merged (for databases larger than one device)
    query_block: int = 4096  # queries per task: bounds memory of the distance block
    refine_ranks: int = 128  # ranks re-scored with exact float64 distances (0 = off)
    search_params: str = ""  # FAISS ParameterSpace string for approximate indexes, e.g. "nprobe=16"
    recall_sample: int = 1000  # queries used to measure recall of an approximate index


@dataclass
class MetricsConfig:
    nntp_k: Optional[List[int]] = None  # None: the smallest k (the paper: 15)
    alpha: List[int] = field(default_factory=lambda: [0])
    sample_block: int = 20000  # samples per block when computing metrics (bounds memory)
    per_sample: bool = True
    permutations: int = 0  # permutation null for NNTS per pair and k (0 = off, else >= 2)
    seed: int = 0
    analysis_max_k: int = 1000  # per-layer/per-class/null analysis for k up to this (memory: n·k per probe)
    null_max_k: int = 1000
    twonn_discard: float = 0.1  # TwoNN: largest share of ratios left out (the original estimator's 10%)
    cka: bool = True
    cka_batch: int = 4096
    cka_max_dim: int = 1024  # wider features are randomly projected before CKA (then approximate)
    most_changed: int = 20  # samples listed per consecutive pair of probe points and k


@dataclass
class RayConfig:
    address: Optional[str] = None  # None: start a local cluster; "auto" or ray://… to connect
    num_cpus: Optional[int] = None
    num_gpus: Optional[int] = None
    actors: Optional[int] = None  # activation actors; None = one per GPU, else one per 2 CPUs
    include_dashboard: bool = False


@dataclass
class PathsConfig:
    runs_root: str = "runs"
    cache_dir: str = ".cache/nnts_ray"  # trained built-in models, keyed by their config


@dataclass
class Config:
    """The Hydra schema (`base_config`). Top-level keys are the ones users touch most."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    models: List[ModelConfig] = field(default_factory=list)  # sweep: several models, one run
    k: List[int] = field(default_factory=lambda: [15, 100])
    run_dir: Optional[str] = None  # None: <paths.runs_root>/<model>-<dataset>
    keep_activations: bool = True
    seed: int = 0


def _reject_unknown(node: Any, schema: type, prefix: str) -> None:
    """`+key=value` can add keys a structured config does not declare; refuse them by name."""
    if not isinstance(node, dict) or not dataclasses.is_dataclass(schema):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in node.items():
        if key == "hydra":
            continue
        if key not in fields:
            raise ConfigError(f"unknown config key {prefix + key!r}; valid keys there: {', '.join(fields)}")
        f = fields[key]
        sub = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if dataclasses.is_dataclass(sub):
            _reject_unknown(value, type(sub), f"{prefix}{key}.")
        elif isinstance(value, list) and key == "models":
            for i, item in enumerate(value):
                _reject_unknown(item, ModelConfig, f"{prefix}models[{i}].")


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{what}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


@dataclass
class RunConfig:
    """The validated, plain configuration of one run (what the pipeline and the manifest see)."""

    dataset: DatasetConfig
    models: List[ModelConfig]
    knn: KnnConfig
    metrics: MetricsConfig
    ray: RayConfig
    paths: PathsConfig
    k: List[int]
    run_dir: str
    keep_activations: bool = True
    seed: int = 0

    @staticmethod
    def from_config(cfg: Config) -> "RunConfig":
        models = list(cfg.models) if cfg.models else [cfg.model]
        run_dir = cfg.run_dir or f"{cfg.paths.runs_root}/{models[0].name if len(models) == 1 else 'sweep'}-{cfg.dataset.name}"
        rc = RunConfig(
            dataset=cfg.dataset, models=models, knn=cfg.knn, metrics=cfg.metrics, ray=cfg.ray,
            paths=cfg.paths, k=sorted(set(int(k) for k in cfg.k)), run_dir=run_dir,
            keep_activations=cfg.keep_activations, seed=cfg.seed,
        )
        rc.validate()
        return rc

    @staticmethod
    def from_hydra(dcfg: Any) -> "RunConfig":
        """Convert a composed DictConfig once; raises ConfigError on bad values."""
        from omegaconf import OmegaConf

        _reject_unknown(OmegaConf.to_container(dcfg, resolve=False), Config, "")
        obj = OmegaConf.to_object(dcfg)
        assert isinstance(obj, Config), type(obj)
        return RunConfig.from_config(obj)

    def validate(self) -> None:
        if not self.k:
            raise ConfigError("k=[] is empty; give at least one neighbourhood size, e.g. k=[15,100]")
        for k in self.k:
            if k < 1:
                raise ConfigError(f"k={k} is not allowed; k must be a positive integer smaller than n")
        _check_choice("dataset.name", self.dataset.name, DATASETS)
        _check_choice("knn.metric", self.knn.metric, METRICS)
        sizes = sorted({m.input_size for m in self.models})
        if self.dataset.image_size is None and len(sizes) > 1:
            raise ConfigError(f"models have input_size {sizes}; models in one run see the same samples: give them "
                              "one input_size or set dataset.image_size")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"models have duplicate names {names}; every model in a run needs its own name")
        for m in self.models:
            _check_choice(f"model[{m.name}].reduction", m.reduction, REDUCTIONS)
            _check_choice(f"model[{m.name}].probe_mode", m.probe_mode, PROBE_MODES)
            if not m.name or any(c in m.name for c in "/\\=") or m.name.startswith("."):
                raise ConfigError(f"model.name={m.name!r} is not allowed; use letters, digits, '-', '_'")
        for a in self.metrics.alpha:
            if a < 0:
                raise ConfigError(f"metrics.alpha={a} is not allowed; alpha is a gap length >= 0")
        if self.metrics.nntp_k is None:
            self.metrics.nntp_k = [self.k[0]]
        for k in self.metrics.nntp_k:
            if k < 1:
                raise ConfigError(f"metrics.nntp_k={k} is not allowed; k must be a positive integer smaller than n")
        if self.knn.query_block < 1 or self.metrics.sample_block < 1:
            raise ConfigError("knn.query_block and metrics.sample_block must be >= 1")

    @property
    def k_max(self) -> int:
        """The one search's k: every NNTS and NNTP k is a prefix of it."""
        return max(self.k + list(self.metrics.nntp_k or []))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes results (not where or how fast the run executes)."""
        d = self.to_dict()
        for volatile in ("ray", "paths", "run_dir"):
            d.pop(volatile)
        d["knn"].pop("query_block")
        d["knn"].pop("shards")
        d["metrics"].pop("sample_block")
        for m in d["models"]:
            m.pop("batch_size")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def register_configs() -> None:
    """Register the schema so `conf/config.yaml` can name `base_config` in its defaults list."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="dataset", name="base_dataset", node=DatasetConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="knn", name="base_knn", node=KnnConfig)
    cs.store(group="metrics", name="base_metrics", node=MetricsConfig)
    cs.store(group="ray", name="base_ray", node=RayConfig)
    cs.store(group="paths", name="base_paths", node=PathsConfig)
