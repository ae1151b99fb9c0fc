"""Command-line edge: Hydra composes `conf/`, the result becomes a `RunConfig` once, errors are one line.

    nnts-ray                                    # LeNet-5 on digits, k = 15 and 100
    nnts-ray model=lenet5 dataset=digits 'k=[15,100]' run_dir=runs/demo
    nnts-ray-layers model=lenet5                # list probe points and their output shapes
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# nnts_ray/conf links to the repository's conf/ (and is a real copy inside an installed wheel).
CONF_DIR = Path(os.environ.get("NNTS_RAY_CONF", Path(__file__).resolve().parent / "conf")).resolve()


def _fail(prog: str, msg: str) -> None:
    print(f"{prog}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def compose(overrides: list[str]):
    """The composed DictConfig for these overrides (the same composition the Hydra app performs)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from nnts_ray.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def load_config(overrides: list[str]):
    """Overrides → validated RunConfig; raises ConfigError (bad values) or Hydra/OmegaConf errors."""
    from nnts_ray.config import RunConfig

    return RunConfig.from_hydra(compose(overrides))


def _valid_keys(dotted: str) -> str:
    """The keys that exist next to a misspelled one, from the schema."""
    import dataclasses

    from nnts_ray.config import Config

    node, parts = Config, dotted.lstrip("+~").split(".")[:-1]
    for part in parts:
        fields = {f.name: f for f in dataclasses.fields(node)}
        if part not in fields or not dataclasses.is_dataclass(fields[part].default_factory()):  # type: ignore[misc]
            break
        node = type(fields[part].default_factory())  # type: ignore[misc]
    return ", ".join(f.name for f in dataclasses.fields(node))


def _one_line(e: BaseException) -> str:
    import re

    m = re.search(r"Could not (?:override|append to) '([^']+)'|Key '([^']+)' (?:not in|is not in)", str(e))
    if m:
        key = m.group(1) or m.group(2)
        return f"unknown config key {key!r}; valid keys there: {_valid_keys(key)}"
    m = re.search(r"Could not find '([^/']+)/([^']+)'.*?Available options in '[^']+':(.*?)(?:Config search path|$)",
                  " ".join(str(e).split()))
    if m:
        options = [o for o in m.group(3).split() if not o.startswith("base_")]
        return f"{m.group(1)}={m.group(2)!r} is not allowed; choose one of: {', '.join(options)}"
    if e.__cause__ is not None and "override" in str(e):
        return f"{str(e).strip()}: {_one_line(e.__cause__)}"
    msg = str(e).strip().splitlines()
    text = " ".join(line.strip() for line in msg if line.strip() and not line.startswith("full_key"))
    return text or type(e).__name__


def _precheck(prog: str, argv: list[str]) -> None:
    """Validate the overrides before Hydra starts, so that bad input gets one line and exit 2."""
    hydra_flags = {"-m", "--multirun", "-c", "--cfg", "-h", "--help", "--hydra-help", "--info", "-i", "--version",
                   "-p", "--package", "-sc", "--shell-completion"}
    if hydra_flags & set(argv):  # sweeps are checked per job; the rest are Hydra's own commands
        return
    overrides = [a for a in argv if not a.startswith("hydra")]
    try:
        load_config(overrides)
    except Exception as e:  # noqa: BLE001 — every composition error is the user's input
        _fail(prog, _one_line(e))


def _run_app(cfg) -> None:
    from nnts_ray.config import ConfigError, RunConfig
    from nnts_ray.pipeline import run
    from nnts_ray.report import summary

    try:
        rc = RunConfig.from_hydra(cfg)
        if cfg.run_dir is None and _multirun_dir():  # every job of a sweep gets its own run directory
            rc.run_dir = _multirun_dir()
        result = run(rc)
    except ConfigError as e:
        _fail("nnts-ray", str(e))
    if result.already_complete:
        print(f"run_dir={rc.run_dir} already holds this finished run; nothing to do.")
    print(summary(rc.run_dir))


def _multirun_dir() -> str | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    return hc.runtime.output_dir if hc.mode == RunMode.MULTIRUN else None


def main() -> None:
    import hydra

    from nnts_ray.config import register_configs

    _precheck("nnts-ray", sys.argv[1:])
    register_configs()
    app = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(_run_app)
    app()


def layers_main() -> None:
    """List a model's probe points (name, position, output shape, dim after reduction)."""
    _precheck("nnts-ray-layers", sys.argv[1:])
    import numpy as np
    import torch

    from nnts_ray.config import ConfigError
    from nnts_ray.models.build import build_model
    from nnts_ray.probes import probe_points

    rc = load_config([a for a in sys.argv[1:] if not a.startswith("-")])
    for mc in rc.models:
        size = rc.dataset.image_size or mc.input_size
        channels = mc.in_channels or (3 if rc.dataset.name == "cifar10" else 1)
        try:
            model = build_model(mc, channels, mc.kwargs.get("num_classes", 10)).eval()
            pts = probe_points(model, mc, torch.zeros(2, channels, size, size), rc.seed)
        except ConfigError as e:
            _fail("nnts-ray-layers", str(e))
        print(f"model {mc.name} ({mc.arch}, probe_mode={mc.probe_mode}, reduction={mc.reduction}): "
              f"{len(pts)} probe points")
        for p in pts:
            shape = "x".join(map(str, p.shape))
            print(f"  {p.position:4d}  {p.layer:<32} {shape:>16}  dim={p.dim}  ({int(np.prod(p.shape))} values)")
