"""Small run directories for the report's tests, written straight in the run contract (SPEC §4 and
`nnts_ray.schemas`): the paper's 12 probe points, NNTS matrices with a known shape, an NNTP table scaled
down from the paper's Table 1 (so the NNTP identity holds by construction), and a tiny model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from nnts_ray import schemas
from nnts_ray.config import Config, ModelConfig, RunConfig
from nnts_ray.io import write_json, write_npy, write_parquet
from nnts_ray.manifest import conventions
from nnts_ray.plan import DataFacts, Ks, RunPlan, SearchSpec
from nnts_ray.naming import RunPaths
from nnts_ray.reproduction import paper
from nnts_ray.reproduction.consistency import edge_counts
from tests.models.tiny import TinyNet

LAYERS = paper.PROBE_POINTS
N, CLASSES = 60, 3  # mean class size 20
KS = (5, 10, 30, 40)  # two ks at or below the class size, two above
NNTP_K = 5
MODEL = ModelConfig(name="tiny", arch="target", target="tests.models.tiny.TinyNet", input_size=32)


def block_matrix(within: float = 0.9, between: float = 0.3, decay: float = 0.02) -> np.ndarray:
    """(12, 12) NNTS with the paper's layer blocks, falling with distance; diagonal 1."""
    group = {name: g for g, members in enumerate(paper.LAYER_GROUPS) for name in members}
    i, j = np.indices((len(LAYERS), len(LAYERS)))
    same = np.vectorize(lambda a, b: group[LAYERS[a]] == group[LAYERS[b]])(i, j)
    s = np.where(same, within, between) - decay * np.abs(i - j)
    np.fill_diagonal(s, 1.0)
    return s


def nnts_for_k(k: int, seed: int = 0) -> np.ndarray:
    """Rises with k up to the class size (20), falls above it, most of all in rows of the last operations."""
    s = block_matrix() + {5: 0.0, 10: 0.05, 30: -0.02, 40: -0.04}.get(k, 0.0)
    last = np.array([name in paper.LAST_OPERATIONS for name in LAYERS])
    if k > N / CLASSES:
        s[last, :] -= 0.1
        s[:, last] -= 0.1
    s += np.random.default_rng(seed).normal(0, 0.005, size=s.shape)
    s = np.clip((s + s.T) / 2, 0, 1)
    np.fill_diagonal(s, 1.0)
    return s


def nntp_table(n: int = N, k: int = NNTP_K) -> np.ndarray:
    """The paper's Table 1 scaled to n·k and rounded: upper-triangular integer run counts."""
    return np.round(paper.table1() * n * k / (paper.N * paper.NNTP_K))


def _nnts_frame(mats: dict[int, np.ndarray], model: str) -> "schemas.pl.DataFrame":
    rows = []
    for k, s in mats.items():
        chance_j, chance_o = k / (2 * (N - 1) - k), k / (N - 1)
        rows += [(model, a, model, b, k, float(s[i, j]), float(s[i, j]), chance_j, chance_o, N)
                 for i, a in enumerate(LAYERS) for j, b in enumerate(LAYERS)]
    return schemas.from_rows(rows, schemas.NNTS)


def _plan(rc: RunConfig) -> RunPlan:
    """The plan's facts the manifest's conventions come from (no data loaded: a fake run)."""
    ks = Ks.resolve(rc.k, rc.metrics.nntp_k, rc.metrics.alpha, N, rc.metrics.analysis_max_k, sets=True)
    return RunPlan(config=rc, fingerprint="fake", data=DataFacts("mnist", N, 1, 32, CLASSES, True, "fake"), ks=ks,
                   search=SearchSpec(k=ks.stored, set_ks=ks.sets), models=())


def write_run(root: Path, seed: int = 0, ks: tuple[int, ...] = KS, dataset: str = "mnist",
              status: str = "complete", input_values: np.ndarray | None = None, n_samples: int | None = None) -> Path:
    """A complete run of the tiny model trained with `seed`; returns its directory."""
    model = replace(MODEL, train=replace(MODEL.train, seed=seed))
    rc = RunConfig.from_config(Config(model=model, k=list(ks), run_dir=str(root)))
    rc.dataset.name, rc.dataset.n_samples = dataset, n_samples
    paths = RunPaths(root)
    t = nntp_table()
    torch.manual_seed(seed)
    net = TinyNet(in_channels=1, num_classes=CLASSES)
    paths.model_weights(model.name).parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), paths.model_weights(model.name))
    shapes = {"input": [1, 32, 32]}
    probes = [{"layer": l, "position": p, "shape": shapes.get(l, [4]), "dim": int(np.prod(shapes.get(l, [4]))),
               "reduction": "flatten"} for p, l in enumerate(LAYERS)]
    write_json({
        "format": "nnts_ray/2", "status": status, "fingerprint": f"fake{seed}", "created": "2020-12-07T00:00:00+00:00",
        "config": rc.to_dict(), "n_samples": N, "conventions": conventions(_plan(rc)),
        "models": {model.name: {"arch": model.arch, "probe_mode": "atomic", "reduction": "flatten",
                                "probe_points": probes,
                                "weights": {"source": "trained", "epochs": 8, "resumed_from_epoch": 0,
                                            "train_accuracy": 0.5 + seed / 100, "data": f"{dataset}:{N}"}}},
    }, paths.manifest)
    labels = np.arange(N) % CLASSES
    write_parquet(schemas.frame({"sample_id": np.arange(N), "label": labels}, schemas.SAMPLES_REQUIRED).to_arrow(),
                  paths.samples)
    write_parquet(_nnts_frame({k: nnts_for_k(k, seed) for k in ks}, model.name).to_arrow(), paths.metric("nnts"))
    write_parquet(schemas.from_rows([(model.name, a, b, NNTP_K, 0, int(t[i, j])) for i, a in enumerate(LAYERS)
                                     for j, b in enumerate(LAYERS) if j >= i and t[i, j] > 0], schemas.NNTP).to_arrow(),
                  paths.metric("nntp"))
    write_parquet(schemas.frame({"model": [model.name] * len(LAYERS), "layer": list(LAYERS), "position": range(len(LAYERS)),
                                 "dim": [p["dim"] for p in probes], "shape": ["x".join(map(str, p["shape"])) for p in probes],
                                 "reduction": ["flatten"] * len(LAYERS), "n_edges_k": edge_counts(t).astype(int)},
                                schemas.LAYERS).to_arrow(), paths.metric("layers"))
    if input_values is not None:
        write_npy(input_values.reshape(N, -1).astype(np.float32), paths.activations(model.name, "input"))
    return root
