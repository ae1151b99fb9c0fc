"""Configuration as a hostile user types it: unknown keys, bad choices for every config group, and
for every key of the schema an out-of-range, wrong-type or wrong-choice value, each on top of the
small base run (synthetic data, n = 300, k = [5, 10]). All must be refused before anything is
written and before Ray starts: exit 2, one line naming the value."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nnts_ray.reliability.model import HANG_TIMEOUT, Case, Cli, Refused, Workspace

ISSUE = "issue"  # listed as misbehaving in issue 12

# key, value, [extra overrides], [ISSUE]. Each becomes the case `values/<key>=<value>`.
VALUES: list[tuple] = [
    ("dataset.name", "nope"),
    ("dataset.n_samples", "0"), ("dataset.n_samples", "1"), ("dataset.n_samples", "-5"), ("dataset.n_samples", "abc"),
    ("dataset.stratified", "maybe"),
    ("dataset.seed", "-1", (), ISSUE), ("dataset.seed", "x"),
    ("dataset.image_size", "0", (), ISSUE), ("dataset.image_size", "-4"), ("dataset.image_size", "big"),
    ("dataset.synthetic.n", "-3", (), ISSUE), ("dataset.synthetic.n", "0"), ("dataset.synthetic.n", "x"),
    ("dataset.synthetic.intrinsic_dim", "0"), ("dataset.synthetic.intrinsic_dim", "-2"),
    ("dataset.synthetic.n_classes", "0"), ("dataset.synthetic.n_classes", "-1"),
    ("dataset.download", "maybe"),
    ("model.name", "a/b"), ("model.name", ""), ("model.name", ".."),
    ("model.arch", "nope"), ("model.arch", "torchvision:nope"), ("model.arch", "timm:nope"), ("model.arch", "target"),
    ("model.target", "sys.exit", ("model.arch=target",)),
    ("model.train.enabled", "maybe"), ("model.train.epochs", "-1"), ("model.train.batch_size", "0"),
    ("model.train.lr", "-1"), ("model.train.lr", "x"), ("model.train.seed", "x"),
    ("model.probe_mode", "bogus"),
    ("model.probes", "[]", (), ISSUE), ("model.probes", "[nope]"),
    ("model.reduction", "bogus"),
    ("model.projection_dim", "-5", ("model.reduction=random_projection",)),
    ("model.batch_size", "0", (), ISSUE), ("model.batch_size", "-1"),
    ("model.in_channels", "3", (), ISSUE), ("model.in_channels", "0"), ("model.in_channels", "-1"),
    ("model.input_size", "4", (), ISSUE), ("model.input_size", "0"), ("model.input_size", "-1"),
    ("model.kwargs", "5"), ("+model.kwargs.foo", "1"),
    ("knn.metric", "bogus"),
    ("knn.index", "bogus", (), ISSUE),
    ("knn.shards", "-1", (), ISSUE), ("knn.shards", "abc"),
    ("knn.query_block", "0"), ("knn.query_block", "-1"),
    ("knn.refine_ranks", "-1", (), ISSUE),
    ("knn.search_params", '"bogus=1"', ('knn.index="IVF4,Flat"',)),
    ("knn.recall_sample", "-1", ('knn.index="IVF4,Flat"',)),
    ("metrics.nntp_k", "[0]"), ("metrics.nntp_k", "[-1]"), ("metrics.nntp_k", "[500]"), ("metrics.nntp_k", "[abc]"),
    ("metrics.alpha", "[-1]"), ("metrics.alpha", "[x]"),
    ("metrics.sample_block", "0"), ("metrics.sample_block", "-1"),
    ("metrics.per_sample", "maybe"),
    ("metrics.permutations", "1", (), ISSUE), ("metrics.permutations", "-1"),
    ("metrics.seed", "x"),
    ("metrics.analysis_max_k", "-1"), ("metrics.null_max_k", "-1"),
    ("metrics.twonn_discard", "1.5", (), ISSUE), ("metrics.twonn_discard", "-0.1"),
    ("metrics.cka", "maybe"), ("metrics.cka_batch", "0"), ("metrics.cka_max_dim", "0"), ("metrics.most_changed", "-1"),
    ("ray.num_cpus", "-1"), ("ray.num_gpus", "-1"), ("ray.actors", "-1"), ("ray.include_dashboard", "maybe"),
    ("k", "[]"), ("k", "[0]"), ("k", "[-5]"), ("k", "[abc]"), ("k", "5"), ("k", "[300]"),
    ("keep_activations", "maybe"), ("seed", "x"), ("seed", "-1"),
    ("models", "[{name:a},{name:a}]"), ("models", "[{name:a,input_size:32},{name:b,input_size:28}]"),
]

GROUPS = ("dataset", "model", "knn", "metrics", "ray", "paths", "experiment")

UNKNOWN_KEYS = ("bogus=1", "dataset.bogus=1", "model.bogus=1", "model.train.bogus=1", "knn.bogus=1",
                "metrics.bogus=1", "ray.bogus=1", "paths.bogus=1", "+bogus=1", "+model.bogus=1",
                "+knn.metric=l2")


def _token(value: str) -> str:
    """The part of an override value a message should repeat: brackets and quotes stripped."""
    v = value.strip("[]\"'")
    return "" if "{" in v or "," in v else v


def value_case(key: str, value: str, extra: tuple[str, ...] = (), source: str = "") -> Case:
    leaf = key.lstrip("+~").split(".")[-1]
    tried = " ".join(f"`{a}`" for a in (*extra, f"{key}={value}"))
    return Case(
        id=f"values/{key}={value}", group="values", tried=tried,
        act=Cli((*extra, f"{key}={value}")), expect=Refused(tuple(m for m in (leaf, _token(value)) if m), any_of=True),
        in_issue=source == ISSUE)


def nnts_spread(ws: Workspace) -> str:
    """What a run that should have been refused computed: the off-diagonal NNTS range."""
    path = Path(ws.run) / "metrics" / "nnts.parquet"
    if not path.is_file():
        return ""
    t = pl.read_parquet(path).filter(pl.col("layer_a") != pl.col("layer_b"))
    return f"off-diagonal NNTS {t['jaccard'].min():.3f}…{t['jaccard'].max():.3f}"


def _waits(*argv: str) -> Cli:
    """A command that may wait forever today: a fresh process with the short hang timeout."""
    return Cli(argv, timeout=HANG_TIMEOUT, fresh=True, waits=True)


def cases() -> list[Case]:
    out = [value_case(key, value, *rest) for key, value, *rest in VALUES]
    out += [Case(id=f"groups/{g}=nope", group="groups", tried=f"`{g}=nope` (no such config in conf/{g}/)",
                 act=Cli((f"{g}=nope",)), expect=Refused((g, "nope"))) for g in GROUPS]
    out += [Case(id=f"keys/{k}", group="keys", tried=f"`{k}`", act=Cli((k,)),
                 expect=Refused((k.lstrip("+~").split("=")[0].split(".")[-1],)))
            for k in UNKNOWN_KEYS]
    out += [
        Case("keys/--cfg job bogus=1", "keys", "`--cfg job bogus=1` (print the config, with an unknown key)",
             Cli(("--cfg", "job", "bogus=1")), Refused(("bogus",))),
        Case("keys/-m knn.metric=bogus,nope", "keys", "`-m knn.metric=bogus,nope` (a sweep of bad values)",
             Cli(("-m", "knn.metric=bogus,nope")), Refused(("bogus",))),
        Case("values/model.target=os.system", "values",
             "`model.arch=target model.target=os.system +model.kwargs.command=\"touch PWNED\"`",
             Cli(("model.arch=target", "model.target=os.system", '+model.kwargs.command="touch PWNED"')),
             Refused(("os.system",)), in_issue=True),
        Case("numbers/projection_dim=0", "numbers", "`model.reduction=random_projection model.projection_dim=0`",
             Cli(("model.reduction=random_projection", "model.projection_dim=0")), Refused(("projection_dim", "0")),
             in_issue=True, describe=nnts_spread),
    ]
    out += [
        Case("resources/ray.num_cpus=0", "resources", "`ray.num_cpus=0` (a local cluster without CPUs)",
             _waits("ray.num_cpus=0"), Refused(("num_cpus", "0")), needs_base=True, in_issue=True),
        Case("resources/ray.address=127.0.0.1:1", "resources", "`ray.address=127.0.0.1:1` (nothing listens there)",
             _waits("ray.address=127.0.0.1:1"), Refused(("127.0.0.1:1",), ray=True), needs_base=True, in_issue=True),
    ]
    out += [
        Case("layers/bogus=1", "layers", "`nnts-ray-layers bogus=1`", Cli(("bogus=1",), entry="nnts-ray-layers",
             base=False), Refused(("bogus",))),
        Case("layers/model.arch=nope", "layers", "`nnts-ray-layers model.arch=nope`",
             Cli(("model.arch=nope",), entry="nnts-ray-layers", base=False), Refused(("nope",))),
        Case("layers/model.probes=[nope]", "layers", "`nnts-ray-layers 'model.probes=[nope]'`",
             Cli(("model.probes=[nope]",), entry="nnts-ray-layers", base=False), Refused(("nope",))),
    ]
    return out
