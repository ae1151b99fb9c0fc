"""Typed configuration: the Hydra schema, and its conversion into the plain, validated `RunConfig`.

`conf/` is composed against these dataclasses once, at the command-line edge (`nnts_ray.cli`);
OmegaConf rejects unknown keys and wrong types. `RunConfig.from_hydra` turns the result into plain
dataclasses and checks every value that can be judged without the data (ranges, choices, resources),
so a bad value is refused before anything runs. What needs the data or the models (k < n, probe
names, channels) is checked by `nnts_ray.plan.make_plan`. Nothing below the plan — and nothing
shipped to a Ray actor — ever sees a `DictConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

METRICS = ("l2", "cosine")
REDUCTIONS = ("flatten", "avgpool", "random_projection")
PROBE_MODES = ("atomic", "modules")
DATASETS = ("digits", "synthetic", "mnist", "fashion_mnist", "cifar10", "image_folder", "parquet")
FILE_SPLITS = ("train", "test", "all")  # the splits of the standard distribution formats
PER_SAMPLE = ("within", "all", "none")  # which pairs get per-sample NNTS rows
CKA_PAIRS = ("within", "all")  # which pairs of probe points get linear CKA
STORES = ("auto", "all")  # which neighbour ranks the tables keep
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class ConfigError(ValueError):
    """A bad value from the user: the message names the value and what is allowed."""


@dataclass
class SyntheticConfig:
    """dataset=synthetic: seeded images on a low-intrinsic-dimension manifold."""

    n: int = 2000
    intrinsic_dim: int = 8
    n_classes: int = 10


@dataclass
class DatasetConfig:
    name: str = "digits"
    root: Optional[str] = None  # directory (mnist/cifar/image_folder) or file (parquet)
    split: str = "train"
    n_samples: Optional[int] = None  # seeded subsample (stratified by label when labels exist)
    stratified: bool = True
    seed: int = 0
    image_size: Optional[int] = None  # resize square images to this side; None = the model's input size
    synthetic: Optional[SyntheticConfig] = None  # only for name=synthetic (conf/dataset/synthetic.yaml)
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
    store: str = "auto"  # auto: neighbour tables keep the ranks readers use (NNTP k, NNTS k up to
    # metrics.analysis_max_k); larger NNTS k are intersected as sets during the search | all: every rank


@dataclass
class MetricsConfig:
    nntp_k: Optional[List[int]] = None  # None: the smallest k (the paper: 15)
    alpha: List[int] = field(default_factory=lambda: [0])
    sample_block: int = 20000  # samples per block when computing metrics (bounds memory)
    per_sample: str = "within"  # per-sample NNTS rows for pairs within a model | all pairs | none
    permutations: int = 0  # permutation null for NNTS per pair and k (0 = off, else >= 2)
    seed: int = 0
    analysis_max_k: int = 1000  # per-layer/per-class/null analysis for k up to this (memory: n·k per probe)
    null_max_k: int = 1000
    twonn_discard: float = 0.1  # TwoNN: largest share of ratios left out (the original estimator's 10%)
    cka: bool = True
    cka_pairs: str = "within"  # CKA for pairs within a model | all pairs (cross-model CKA grows with P² of the zoo)
    cka_batch: int = 4096
    cka_max_dim: int = 1024  # wider features are randomly projected before CKA (then approximate)
    most_changed: int = 20  # samples listed per consecutive pair of probe points and k
    embedding: bool = True  # 2-D PCA map per probe point (metrics/embedding.parquet) for viewers


@dataclass
class RayConfig:
    address: Optional[str] = None  # None: start a local cluster; "auto" or host:port or ray://… to connect
    num_cpus: Optional[int] = None
    num_gpus: Optional[int] = None
    actors: Optional[int] = None  # activation actors; None = one per GPU, else one per CPU
    include_dashboard: bool = False
    connect_timeout_s: float = 60.0  # give up on an unreachable `address` after this long


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


def _sub_schema(schema: type, key: str) -> type | None:
    """The dataclass that field `key` of `schema` holds (directly or as Optional), else None."""
    hint = typing.get_type_hints(schema).get(key)
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate  # type: ignore[return-value]
    return None


def _reject_unknown(node: Any, schema: type, prefix: str) -> None:
    """`+key=value` can add keys a structured config does not declare; refuse them by name."""
    if not isinstance(node, dict) or not dataclasses.is_dataclass(schema):
        return
    names = [f.name for f in dataclasses.fields(schema)]
    for key, value in node.items():
        if key == "hydra":
            continue
        if key not in names:
            raise ConfigError(f"unknown config key {prefix + key!r}; valid keys there: {', '.join(names)}")
        sub = _sub_schema(schema, key)
        if sub is not None:
            _reject_unknown(value, sub, f"{prefix}{key}.")
        elif isinstance(value, list) and key == "models":
            for i, item in enumerate(value):
                _reject_unknown(item, ModelConfig, f"{prefix}models[{i}].")


def valid_keys(dotted: str) -> str:
    """The keys that exist next to a (misspelled) dotted key, from the schema."""
    node: type = Config
    for part in dotted.lstrip("+~").split(".")[:-1]:
        sub = _sub_schema(node, part.split("[")[0])
        if sub is None:
            break
        node = sub
    return ", ".join(f.name for f in dataclasses.fields(node))


def choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{what}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def at_least(what: str, value: float | None, low: float, none_ok: bool = False, hint: str = "") -> None:
    """Refuse `value` below `low` (or None unless allowed), naming the key and the range."""
    if value is None and none_ok:
        return
    if value is None or value < low:
        allowed = f"an integer >= {low}" if isinstance(low, int) else f"a number >= {low}"
        raise ConfigError(f"{what}={value} is not allowed; give {allowed}{' or null' if none_ok else ''}{hint}")


def check_ks(what: str, ks: list[int]) -> None:
    if not ks:
        raise ConfigError(f"{what}=[] is empty; give at least one neighbourhood size, e.g. {what}=[15,100]")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"{what}={k!r} is not allowed; every k must be a positive integer smaller than n")


def check_alphas(alphas: list[int]) -> None:
    if not alphas:
        raise ConfigError("metrics.alpha=[] is empty; give at least one gap length, e.g. metrics.alpha=[0]")
    for a in alphas:
        if isinstance(a, bool) or not isinstance(a, int) or a < 0:
            raise ConfigError(f"metrics.alpha={a!r} is not allowed; alpha is a gap length, an integer >= 0")


@dataclass
class RunConfig:
    """The validated, plain configuration of one run (what the plan, the pipeline and the manifest see)."""

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
        """Validate, then fill the defaults that depend on other values (run_dir, metrics.nntp_k)."""
        models = list(cfg.models) if cfg.models else [cfg.model]
        check_ks("k", list(cfg.k))
        if cfg.metrics.nntp_k is not None:
            check_ks("metrics.nntp_k", list(cfg.metrics.nntp_k))
        ks = sorted(set(int(k) for k in cfg.k))
        metrics = dataclasses.replace(cfg.metrics, nntp_k=sorted(set(cfg.metrics.nntp_k)) if cfg.metrics.nntp_k
                                      else [ks[0]])
        name = models[0].name if len(models) == 1 else "sweep"
        rc = RunConfig(
            dataset=cfg.dataset, models=models, knn=cfg.knn, metrics=metrics, ray=cfg.ray, paths=cfg.paths,
            k=ks, run_dir=cfg.run_dir or f"{cfg.paths.runs_root}/{name}-{cfg.dataset.name}",
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
        """Every check that needs neither the data nor the models."""
        _check_dataset(self.dataset)
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"models have duplicate names {names}; every model in a run needs its own name")
        for m in self.models:
            _check_model(m)
        sizes = sorted({m.input_size for m in self.models})
        if self.dataset.image_size is None and len(sizes) > 1:
            raise ConfigError(f"models have input_size {sizes}; models in one run see the same samples: give them "
                              "one input_size or set dataset.image_size")
        _check_knn(self.knn)
        _check_metrics(self.metrics)
        _check_ray(self.ray)
        at_least("seed", self.seed, 0)
        if not self.run_dir:
            raise ConfigError("run_dir='' is not allowed; give a directory path")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes results (not where or how fast the run executes)."""
        d = self.to_dict()
        for volatile in ("ray", "paths", "run_dir"):
            d.pop(volatile)
        for key in ("query_block", "shards"):
            d["knn"].pop(key)
        d["metrics"].pop("sample_block")
        for m in d["models"]:
            m.pop("batch_size")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _check_dataset(d: DatasetConfig) -> None:
    choice("dataset.name", d.name, DATASETS)
    if d.name in ("mnist", "fashion_mnist", "cifar10"):
        choice(f"dataset.split (for {d.name})", d.split, FILE_SPLITS)
    at_least("dataset.n_samples", d.n_samples, 2, none_ok=True)
    at_least("dataset.seed", d.seed, 0)
    at_least("dataset.image_size", d.image_size, 1, none_ok=True)
    if d.name == "synthetic":
        s = d.synthetic or SyntheticConfig()
        at_least("dataset.synthetic.n", s.n, 2)
        at_least("dataset.synthetic.intrinsic_dim", s.intrinsic_dim, 1)
        at_least("dataset.synthetic.n_classes", s.n_classes, 1)
    elif d.synthetic is not None:
        raise ConfigError(f"dataset.synthetic is only used with dataset=synthetic, not dataset={d.name}; remove it")


def _check_model(m: ModelConfig) -> None:
    what = f"model[{m.name}]" if m.name else "model"
    if not m.name or not _NAME.match(m.name) or m.name in (".", ".."):
        raise ConfigError(f"model.name={m.name!r} is not allowed; use letters, digits, '-', '_', '.'")
    choice(f"{what}.reduction", m.reduction, REDUCTIONS)
    choice(f"{what}.probe_mode", m.probe_mode, PROBE_MODES)
    if not m.probes:
        raise ConfigError(f"{what}.probes=[] is empty; give probe point names or globs, e.g. model.probes=['*']")
    at_least(f"{what}.projection_dim", m.projection_dim, 1)
    at_least(f"{what}.batch_size", m.batch_size, 1)
    at_least(f"{what}.in_channels", m.in_channels, 1, none_ok=True)
    at_least(f"{what}.input_size", m.input_size, 1)
    at_least(f"{what}.train.epochs", m.train.epochs, 0)
    at_least(f"{what}.train.batch_size", m.train.batch_size, 1)
    at_least(f"{what}.train.seed", m.train.seed, 0)
    if not m.train.lr > 0:
        raise ConfigError(f"{what}.train.lr={m.train.lr} is not allowed; give a learning rate > 0")


def _check_knn(k: KnnConfig) -> None:
    choice("knn.metric", k.metric, METRICS)
    choice("knn.store", k.store, STORES)
    at_least("knn.shards", k.shards, 1, none_ok=True)
    at_least("knn.query_block", k.query_block, 1)
    at_least("knn.refine_ranks", k.refine_ranks, 0)
    at_least("knn.recall_sample", k.recall_sample, 1)
    if k.index == "exact" and k.search_params:
        raise ConfigError(f"knn.search_params={k.search_params!r} only applies to approximate indexes; "
                          "set knn.index to a FAISS index_factory string or leave search_params empty")


def _check_metrics(m: MetricsConfig) -> None:
    check_alphas(list(m.alpha))
    choice("metrics.per_sample", m.per_sample, PER_SAMPLE)
    choice("metrics.cka_pairs", m.cka_pairs, CKA_PAIRS)
    at_least("metrics.sample_block", m.sample_block, 1)
    if m.permutations == 1 or m.permutations < 0:
        raise ConfigError(f"metrics.permutations={m.permutations} is not allowed; use 0 (off) or at least 2")
    at_least("metrics.seed", m.seed, 0)
    if not 0.0 <= m.twonn_discard < 1.0:
        raise ConfigError(f"metrics.twonn_discard={m.twonn_discard} is not allowed; give a share in [0, 1)")
    for key in ("analysis_max_k", "null_max_k", "cka_batch", "cka_max_dim", "most_changed"):
        at_least(f"metrics.{key}", getattr(m, key), 1)


def _check_ray(r: RayConfig) -> None:
    hint = " (a cluster without CPUs can run no actor)"
    at_least("ray.num_cpus", r.num_cpus, 1, none_ok=True, hint=hint)
    at_least("ray.num_gpus", r.num_gpus, 0, none_ok=True)
    at_least("ray.actors", r.actors, 1, none_ok=True)
    if not r.connect_timeout_s > 0:
        raise ConfigError(f"ray.connect_timeout_s={r.connect_timeout_s} is not allowed; give seconds > 0")
    if r.address is not None and r.address != "auto" and not r.address.startswith("ray://") \
            and not re.fullmatch(r"[^\s:/]+:\d{1,5}", r.address):
        raise ConfigError(f"ray.address={r.address!r} is not allowed; give null (local cluster), auto, "
                          "host:port or ray://host:port")


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
