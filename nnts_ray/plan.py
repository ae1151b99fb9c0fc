"""The run plan: every fact a run derives from its configuration, its data and its models, decided once.

`make_plan` is the edge below the configuration: it loads the samples, resolves the neighbourhood
sizes, builds each model untrained to find its probe points (names, shapes, dims), and refuses
anything that can be known to be wrong before work starts (k ≥ n, unknown probe points, a model that
does not fit the data, a checkpoint that does not load, an index string FAISS does not know).
Every stage, the CLI and `nnts-ray-layers` read the plan; none of them derives these facts again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from nnts_ray.config import ConfigError, ModelConfig, RunConfig, check_alphas, check_ks
from nnts_ray.knn.exact import candidates_needed

if TYPE_CHECKING:
    from nnts_ray.data import SampleSet


@dataclass(frozen=True)
class ProbePoint:
    """One recorded output of one model: the unit every neighbour table, metric and figure refers to."""

    model: str
    layer: str  # the graph node name (atomic) or module path (modules)
    position: int  # order in its model's chain, 0 = input
    shape: tuple[int, ...] = ()  # output shape per sample
    dim: int = 0  # feature dimension after reduction
    reduction: str = "flatten"

    @property
    def key(self) -> tuple[str, str]:
        return self.model, self.layer


@dataclass(frozen=True)
class Ks:
    """The neighbourhood sizes of a run and what follows from them."""

    nnts: tuple[int, ...]  # NNTS k, ascending
    nntp: tuple[int, ...]  # NNTP k, ascending
    alpha: tuple[int, ...]  # NNTP gap lengths
    analysis: tuple[int, ...]  # NNTS k the analysis suite covers (≤ metrics.analysis_max_k)
    analysis_nntp: tuple[int, ...]  # NNTP k the analysis suite covers (persistent partners)
    sets: tuple[int, ...] = ()  # NNTS k above `stored`: intersected as sets during the search, not stored

    @property
    def search(self) -> int:
        """The one search's k: every NNTS and NNTP k is a prefix of it (or one of its sets)."""
        return max(self.nnts + self.nntp)

    @property
    def stored(self) -> int:
        """Ranks the neighbour tables keep: every k a reader needs as ranks (NNTP, the analysis suite,
        the viewers); NNTS k beyond them are `sets`."""
        return max(k for k in self.nnts + self.nntp if k not in self.sets)

    @property
    def analysis_read(self) -> int:
        """Ranks the analysis suite reads from each neighbour table (0: the suite is off)."""
        return max(self.analysis + self.analysis_nntp, default=0)

    @staticmethod
    def resolve(nnts: Sequence[int], nntp: Sequence[int] | None, alpha: Sequence[int], n: int,
                analysis_max_k: int | None = None, what: str = "k", sets: bool = False) -> "Ks":
        """Check every k against n (1 ≤ k < n) and derive the rest; nntp None = the smallest NNTS k.
        With `sets`, NNTS k above both analysis_max_k and every NNTP k are set-only (not stored)."""
        check_ks(what, list(nnts))
        nntp = [min(nnts)] if nntp is None else list(nntp)
        check_ks("metrics.nntp_k" if what == "k" else "nntp_k", nntp)
        check_alphas(list(alpha))
        for name, ks in ((what, nnts), ("metrics.nntp_k" if what == "k" else "nntp_k", nntp)):
            if max(ks) >= n:
                raise ConfigError(f"{name}={max(ks)} is not allowed for n={n} samples; every k must be < n "
                                  f"(at most {n - 1})")
        nnts_t, nntp_t = tuple(sorted(set(nnts))), tuple(sorted(set(nntp)))
        cap = max(nnts_t + nntp_t) if analysis_max_k is None else analysis_max_k
        set_only = tuple(k for k in nnts_t if k > max(cap, *nntp_t)) if sets else ()
        return Ks(nnts_t, nntp_t, tuple(sorted(set(alpha))), tuple(k for k in nnts_t if k <= cap),
                  tuple(k for k in nntp_t if k <= cap), set_only)


@dataclass(frozen=True)
class SearchSpec:
    """How every probe point is searched (plain values: shipped to search actors as they are)."""

    k: int  # ranks searched and stored
    metric: str = "l2"
    set_ks: tuple[int, ...] = ()  # larger k whose neighbour sets are intersected during the search
    query_block: int = 4096
    refine_ranks: int = 128
    factory: str | None = None  # FAISS index_factory string for approximate search; None = exact
    search_params: str = ""
    recall_sample: int = 1000
    shards: int = 1  # database shards per query (1: every actor holds the whole database)

    @property
    def need(self) -> int:
        """Ranks a search must get right including self, which is then removed by index."""
        return self.k + 1

    def candidates(self, n: int) -> int:
        return candidates_needed(self.k, n)


@dataclass(frozen=True)
class DataFacts:
    name: str
    n: int
    channels: int
    image_size: int
    classes: int  # outputs of a classifier head: largest label + 1 (10 without labels)
    labelled: bool
    digest: str  # content of sample ids, labels and model inputs


@dataclass(frozen=True)
class ModelPlan:
    config: ModelConfig
    in_channels: int
    num_classes: int
    probes: tuple[ProbePoint, ...]

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig
    fingerprint: str
    data: DataFacts
    ks: Ks
    search: SearchSpec
    models: tuple[ModelPlan, ...]
    source: "SampleSet" = field(repr=False, compare=False, default=None)  # the loaded samples

    @property
    def probes(self) -> tuple[ProbePoint, ...]:
        """Every probe point of every model, models in config order, each in chain order."""
        return tuple(p for m in self.models for p in m.probes)

    def model(self, name: str) -> ModelPlan:
        return next(m for m in self.models if m.name == name)


def load_source(rc: RunConfig) -> "SampleSet":
    from nnts_ray.data import load_dataset

    return load_dataset(rc.dataset, rc.dataset.image_size or rc.models[0].input_size)


def make_plan(rc: RunConfig, source: "SampleSet | None" = None) -> RunPlan:
    """The plan of run `rc` (its samples loaded from the dataset unless given); ConfigError on bad input."""
    import numpy as np

    from nnts_ray import digest

    ss = load_source(rc) if source is None else source
    images = np.asarray(ss.images)
    data = DataFacts(
        name=rc.dataset.name, n=len(ss), channels=int(images.shape[1]), image_size=int(images.shape[-1]),
        classes=int(ss.labels.max()) + 1 if ss.labels is not None and len(ss.labels) else 10,
        labelled=ss.labels is not None, digest=digest.arrays(ss.sample_ids, ss.labels, images),
    )
    m, knn = rc.metrics, rc.knn
    sets = knn.store == "auto" and knn.index == "exact" and (knn.shards or 1) == 1  # sets need whole, exact databases
    ks = Ks.resolve(rc.k, m.nntp_k, m.alpha, data.n, m.analysis_max_k, sets=sets)
    models = tuple(_model_plan(mc, data, images[:2], rc.seed) for mc in rc.models)
    search = SearchSpec(k=ks.stored, set_ks=ks.sets, metric=knn.metric, query_block=knn.query_block,
                        refine_ranks=knn.refine_ranks,
                        factory=None if knn.index == "exact" else knn.index, search_params=knn.search_params,
                        recall_sample=knn.recall_sample, shards=knn.shards or 1)
    if search.factory:
        _check_index(search, sorted({p.dim for mp in models for p in mp.probes}))
    return RunPlan(config=rc, fingerprint=rc.fingerprint(), data=data, ks=ks, search=search, models=models,
                   source=ss)


def _model_plan(mc: ModelConfig, data: DataFacts, example, seed: int) -> ModelPlan:
    """Build the model untrained (probe points do not depend on weights), check that it takes the data
    and that a given checkpoint loads into it."""
    import numpy as np
    import torch

    from nnts_ray.models.build import build_model, load_state, load_weights
    from nnts_ray.probes import probe_points

    if mc.in_channels is not None and mc.in_channels != data.channels:
        raise ConfigError(f"model.in_channels={mc.in_channels} does not match the data: {data.name} images have "
                          f"{data.channels} channel(s); leave model.in_channels unset (null) to take it from the data")
    num_classes = int(mc.kwargs.get("num_classes", data.classes))
    model = build_model(mc, data.channels, num_classes)
    if mc.checkpoint:
        load_weights(model, load_state(mc.checkpoint, "model.checkpoint"), f"model.checkpoint={mc.checkpoint!r}")
    points = probe_points(model.eval(), mc, torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32)), seed)
    return ModelPlan(config=mc, in_channels=data.channels, num_classes=num_classes, probes=tuple(points))


def _check_index(search: SearchSpec, dims: list[int]) -> None:
    """Refuse an index_factory / search_params string FAISS cannot build for these dims."""
    import faiss

    for d in dims:
        try:
            index = faiss.index_factory(d, search.factory)
            if search.search_params:
                faiss.ParameterSpace().set_index_parameters(index, search.search_params)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise ConfigError(f"knn.index={search.factory!r} with knn.search_params={search.search_params!r} "
                              f"cannot be built for a probe point of dim {d} ({first}); give a FAISS "
                              f"index_factory string such as 'IVF256,Flat' or 'HNSW32', or knn.index=exact") from None
