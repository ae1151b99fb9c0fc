"""Command-line edge: `conf/` is composed once per run with Hydra's compose API, the result becomes a
`RunConfig` and then a `RunPlan`; every problem with the input is one line on stderr and exit code 2.

    nnts-ray                                    # LeNet-5 on digits, k = 15 and 100
    nnts-ray model=lenet5 dataset=digits 'k=[15,100]' run_dir=runs/demo
    nnts-ray -m model=lenet5,small_resnet       # one run per job (a sweep)
    nnts-ray --cfg job                          # the resolved configuration, nothing run
    nnts-ray-layers model=lenet5                # list probe points and their output shapes
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

# nnts_ray/conf links to the repository's conf/ (and is a real copy inside an installed wheel).
CONF_DIR = Path(os.environ.get("NNTS_RAY_CONF", Path(__file__).resolve().parent / "conf")).resolve()
FLAGS = "-h/--help, --cfg job, -m/--multirun"


from nnts_ray.config import ConfigError  # noqa: E402  (light: dataclasses only)


class UsageError(ConfigError):
    """Bad command-line input (flags, override syntax, unknown keys or options): one line, exit 2."""


def _fail(prog: str, msg: str, code: int = 2):
    print(f"{prog}: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def options(group: str) -> list[str]:
    """The config options of a group (the YAML files of conf/<group>/)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _composition_error(e: Exception, overrides: list[str]) -> str:
    """One line for a composition failure, from the exception's own fields (never its text)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from nnts_ray.config import valid_keys

    cause = e.__cause__
    if isinstance(e, MissingConfigException) and e.missing_cfg_file and "/" in e.missing_cfg_file:
        group, name = e.missing_cfg_file.split("/", 1)
        return f"{group}={name!r} is not allowed; choose one of: {', '.join(o for o in e.options or [] if not o.startswith('base_'))}"
    if isinstance(e, OverrideParseException):
        return f"cannot parse the overrides {' '.join(overrides)!r}: {str(e).splitlines()[0]}"
    if isinstance(e, ConfigCompositionException) and isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        return f"unknown config key {cause.full_key!r}; valid keys there: {valid_keys(cause.full_key)}"
    if isinstance(e, ConfigCompositionException) and isinstance(cause, ValidationError):
        key = cause.full_key.split("[")[0]
        given = next((o for o in overrides if _key(o) == key), key)
        return f"{given} is not allowed: {str(cause).splitlines()[0]}"
    return ""


def compose(overrides: list[str]):
    """The composed DictConfig for these overrides; UsageError on any composition problem."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from nnts_ray.config import register_configs

    for o in overrides:
        if _key(o) == "experiment" and "=" in o and o.split("=", 1)[1] not in options("experiment"):
            raise UsageError(f"experiment={o.split('=', 1)[1]!r} is not allowed; choose one of: "
                             f"{', '.join(options('experiment'))}")
        if _key(o).startswith("hydra"):
            raise UsageError(f"{o!r}: nnts-ray composes conf/ itself and takes no hydra.* settings; "
                             "choose the run directory with run_dir=…")
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=overrides)
    except Exception as e:  # noqa: BLE001 — every composition error is the user's input
        message = _composition_error(e, overrides)
        if not message:
            culprit = _first_failing(overrides)
            parent = _key(culprit).rpartition(".")[0]
            message = (f"{culprit!r} cannot be applied: {parent or 'its section'} is not set in this configuration"
                       + (" (dataset.synthetic.* needs dataset=synthetic)" if parent == "dataset.synthetic" else ""))
        raise UsageError(message) from None


def _first_failing(overrides: list[str]) -> str:
    """The first override that composition cannot take (tried one more at a time)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    for i in range(1, len(overrides) + 1):
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                hydra_compose(config_name="config", overrides=overrides[:i])
        except Exception:  # noqa: BLE001
            return overrides[i - 1]
    return " ".join(overrides)


def load_config(overrides: list[str]):
    """Overrides → validated RunConfig (composed once); raises UsageError or ConfigError."""
    from nnts_ray.config import RunConfig

    return RunConfig.from_hydra(compose(overrides))


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """`-m` sweeps: the cartesian product of every comma-separated override (Hydra's grammar)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as e:
        raise UsageError(f"cannot parse the overrides {' '.join(overrides)!r}: {str(e).splitlines()[0]}") from None
    choices = []
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise UsageError(f"{o.input_line!r}: only comma-separated sweeps are supported")
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([o.input_line])
    return [list(job) for job in itertools.product(*choices)]


def _split_flags(prog: str, argv: list[str]) -> tuple[set[str], list[str]]:
    flags, overrides = set(), []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            flags.add("help")
        elif a in ("-m", "--multirun"):
            flags.add("multirun")
        elif a in ("--cfg", "-c") and i + 1 < len(argv) and argv[i + 1] == "job":
            flags.add("cfg")
            i += 1
        elif a.startswith("-"):
            _fail(prog, f"unknown option {a!r}; {prog} takes key=value overrides and the flags {FLAGS}")
        else:
            overrides.append(a)
        i += 1
    return flags, overrides


def _help(prog: str) -> str:
    from nnts_ray.config import valid_keys

    groups = "\n".join(f"  {g:<11} {', '.join(options(g))}" for g in
                       ("dataset", "model", "knn", "metrics", "ray", "paths", "experiment"))
    return (f"usage: {prog} [key=value ...] [{FLAGS}]\n\n"
            f"Config groups (group=option):\n{groups}\n\n"
            f"Top-level keys: {valid_keys('x')}\n"
            f"Any key below them: e.g. knn.metric=cosine 'k=[15,100]' model.probes='[input,C*,O]'\n"
            f"--cfg job prints the resolved configuration and exits; -m runs one job per value of every "
            f"comma-separated override.")


def _one_run(overrides: list[str], sweep_dir: str | None = None):
    """Compose (once), validate and plan one job, nothing written; a job of a sweep without its own
    run_dir runs in `<runs_root>/<sweep_dir>`."""
    import dataclasses

    from nnts_ray.config import RunConfig
    from nnts_ray.plan import make_plan

    cfg = compose(overrides)
    rc = RunConfig.from_hydra(cfg)
    if sweep_dir is not None and cfg.run_dir is None:
        rc = dataclasses.replace(rc, run_dir=f"{rc.paths.runs_root}/{sweep_dir}")
    return make_plan(rc)


def main(argv: list[str] | None = None) -> None:
    prog = "nnts-ray"
    flags, overrides = _split_flags(prog, sys.argv[1:] if argv is None else argv)
    if "help" in flags:
        print(_help(prog))
        return
    try:
        if "cfg" in flags:
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(load_config(overrides).to_dict()), end="")
            return
        jobs = sweep_jobs(overrides) if "multirun" in flags else [overrides]
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        sweep = "multirun" in flags
        plans = [_one_run(job, f"multirun/{stamp}/{i}" if sweep else None)  # every job checked before any runs
                 for i, job in enumerate(jobs)]
        for plan in plans:
            _execute(plan)
    except ConfigError as e:
        _fail(prog, str(e))
    except KeyboardInterrupt:
        _fail(prog, "interrupted; started again with the same command, the run resumes where it stopped", 130)
    except Exception as e:  # noqa: BLE001 — a bug, not bad input: one line here, the details in a file
        _fail(prog, f"internal error: {type(e).__name__}: {e} (traceback in {_save_traceback()})", 1)


def _execute(plan) -> None:
    from nnts_ray.pipeline import execute
    from nnts_ray.report import summary

    result = execute(plan)
    if result.already_complete:
        print(f"run_dir={plan.config.run_dir} already holds this finished run; nothing to do.")
    print(summary(plan.config.run_dir))


def _save_traceback() -> str:
    fd, path = tempfile.mkstemp(prefix="nnts-ray-error-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(traceback.format_exc())
    return path


def layers_main(argv: list[str] | None = None) -> None:
    """List a model's probe points (name, position, output shape, dim after reduction)."""
    import numpy as np

    prog = "nnts-ray-layers"
    flags, overrides = _split_flags(prog, sys.argv[1:] if argv is None else argv)
    if "help" in flags:
        print(_help(prog).replace("--cfg job prints", "Lists the probe points; --cfg job prints"))
        return
    try:
        plan = _one_run(overrides)
    except ConfigError as e:
        _fail(prog, str(e))
    for mp in plan.models:
        mc = mp.config
        print(f"model {mc.name} ({mc.arch}, probe_mode={mc.probe_mode}, reduction={mc.reduction}): "
              f"{len(mp.probes)} probe points")
        for p in mp.probes:
            shape = "x".join(map(str, p.shape))
            print(f"  {p.position:4d}  {p.layer:<32} {shape:>16}  dim={p.dim}  ({int(np.prod(p.shape))} values)")


if __name__ == "__main__":
    main()
