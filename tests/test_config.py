"""Every config composes into a valid RunConfig; the schema rejects unknown keys and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnts_ray.cli import CONF_DIR, compose, load_config, options
from nnts_ray.config import ConfigError, RunConfig

GROUPS = ["dataset", "model", "knn", "metrics", "ray", "paths"]


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group):
    for option in options(group):
        rc = load_config([f"{group}={option}"])
        assert isinstance(rc, RunConfig)


def test_every_experiment_composes():
    for option in options("experiment"):
        assert isinstance(load_config([f"experiment={option}"]), RunConfig)


def test_default_is_the_paper_setup_on_digits():
    rc = load_config([])
    assert rc.dataset.name == "digits" and [m.arch for m in rc.models] == ["lenet5"]
    assert rc.k == [15, 100] and rc.knn.metric == "l2" and rc.knn.index == "exact"
    assert rc.metrics.nntp_k == [15] and rc.metrics.alpha == [0]


def test_fingerprint_ignores_where_and_how_fast_but_not_what():
    a = load_config(["run_dir=x", "ray.num_cpus=2", "knn.query_block=10"])
    b = load_config(["run_dir=y"])
    c = load_config(["run_dir=x", "k=[15]"])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("override, message", [
    ("knn.metricz=l2", "unknown config key 'knn.metricz'; valid keys there: metric, index, shards"),
    ("+dataset.colour=red", "unknown config key 'dataset.colour'; valid keys there: name, root, split"),
    ("k=abc", "k=abc is not allowed: Invalid value assigned: str is not a ListConfig"),
    ("knn.query_block=many", "knn.query_block=many is not allowed: Value 'many' of type 'str' could not be converted"),
    ("dataset=imagenet", "dataset='imagenet' is not allowed; choose one of: cifar10, digits, fashion_mnist"),
    ("experiment=nope", "experiment='nope' is not allowed; choose one of: paper_lenet5_mnist"),
    ("dataset.synthetic.n=5", "'dataset.synthetic.n=5' cannot be applied: dataset.synthetic is not set"),
    ("k=[15,", "cannot parse the overrides 'k=[15,'"),
    ("hydra.run.dir=x", "nnts-ray composes conf/ itself and takes no hydra.* settings"),
    ("metrics.cka_pairs=some", "metrics.cka_pairs='some' is not allowed; choose one of: within, all"),
])
def test_schema_rejects_unknown_keys_wrong_types_and_options_by_name(override, message):
    with pytest.raises(ConfigError) as e:
        load_config([override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_config_dir_is_the_top_level_conf():
    assert CONF_DIR == Path(__file__).resolve().parents[1] / "conf"
    assert compose([]).k == [15, 100]
