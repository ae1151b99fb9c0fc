"""The seed experiment is the paper's experiment with another training seed and the k the seed analysis needs."""

from __future__ import annotations

from nnts_ray.cli import load_config
from nnts_ray.reproduction.seeds import MAY_DIFFER, flatten_config


def test_seed_experiment_differs_from_the_paper_run_only_where_seed_runs_may():
    root = ["dataset.root=/data/mnist"]
    main = load_config(["experiment=paper_lenet5_mnist", *root])
    seed = load_config(["experiment=paper_lenet5_mnist_seed", "model.train.seed=2", *root])
    assert seed.k == [15, 100] and seed.run_dir.endswith("paper_lenet5_mnist_seed2")
    assert seed.models[0].train.seed == 2 and seed.metrics.nntp_k == main.metrics.nntp_k == [15]
    a, b = flatten_config(main.to_dict()), flatten_config(seed.to_dict())
    assert sorted(key for key in a if a[key] != b[key]) == ["k", "models.0.train.seed", "run_dir"]
    assert all(MAY_DIFFER.match(key) for key in ("k", "models.0.train.seed", "run_dir"))
