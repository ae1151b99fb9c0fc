"""deploy/: the KubeRay manifests, the cluster-launcher config and the Dockerfile are valid and agree.

Every `nnts-ray` command written down in deploy/ (manifest entrypoints, README examples) is composed
against the app's real Hydra config and validated like the command line does, so a renamed or
misspelled option fails here instead of on a cluster. Nothing here starts Ray or talks to Kubernetes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml
from nnts_ray.cli import load_config
from nnts_ray.config import ConfigError, RunConfig

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
APP_SCRIPT = "nnts-ray"
IMAGE = "nnts-ray:latest"
RUNS_MOUNT = "/runs"
GPU = "nvidia.com/gpu"
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}
CLUSTER_KINDS = ["RayCluster", "RayJob"]


def load_documents(path: Path) -> list[Any]:
    with path.open() as f:
        return list(yaml.safe_load_all(f))


@functools.cache
def kuberay_manifests() -> dict[str, dict]:
    """The documents of deploy/kuberay/ by kind (exactly one of each kind)."""
    docs = [doc for path in sorted((DEPLOY / "kuberay").glob("*.yaml")) for doc in load_documents(path)]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), f"one document per kind expected, got {[d['kind'] for d in docs]}"
    return by_kind


def cluster_spec(kind: str) -> dict:
    """The RayCluster spec a manifest of this kind creates."""
    spec = kuberay_manifests()[kind]["spec"]
    return spec["rayClusterSpec"] if kind == "RayJob" else spec


def pod_templates(spec: dict) -> Iterator[tuple[str, dict]]:
    """(group name, pod template) for the head and every worker group."""
    yield "head", spec["headGroupSpec"]["template"]
    for group in spec["workerGroupSpecs"]:
        yield group["groupName"], group["template"]


def ray_container(template: dict) -> dict:
    """KubeRay treats a pod template's first container as the Ray container."""
    return template["spec"]["containers"][0]


@functools.cache
def cluster_launcher() -> dict:
    (config,) = load_documents(DEPLOY / "cluster-launcher.yaml")
    return config


def join_continued_lines(text: str) -> str:
    """Shell and Dockerfile text with backslash-newline continuations joined into one line."""
    return re.sub(r"\\\n", " ", text)


@functools.cache
def dockerfile_instructions() -> dict[str, list[str]]:
    """Dockerfile arguments of each instruction (continuation lines joined, comments dropped)."""
    text = join_continued_lines((DEPLOY / "Dockerfile").read_text())
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def dockerfile_arg(name: str) -> str:
    defaults = dict(arg.split("=", 1) for arg in dockerfile_instructions()["ARG"] if "=" in arg)
    return defaults[name]


def console_scripts() -> dict[str, str]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def app_overrides(command: str) -> list[str] | None:
    """The overrides of an `nnts-ray` invocation inside a shell command; None when it has none."""
    tokens = shlex.split(command, comments=True)
    if APP_SCRIPT not in tokens:
        return None
    overrides = tokens[tokens.index(APP_SCRIPT) + 1:]
    ends = [i for i, token in enumerate(overrides) if token in SHELL_OPERATORS]
    return overrides[: ends[0]] if ends else overrides


def is_command_field(key: str) -> bool:
    """A RayJob's `entrypoint` or the cluster launcher's `*_commands` lists: shell command lines."""
    return key == "entrypoint" or key.endswith("_commands")


def commands_in(node: Any, in_command_field: bool = False) -> Iterator[str]:
    """The shell commands held anywhere in a YAML document's command fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from commands_in(value, in_command_field or is_command_field(str(key)))
    elif isinstance(node, list):
        for value in node:
            yield from commands_in(value, in_command_field)
    elif isinstance(node, str) and in_command_field:
        yield node


def shell_commands_in_readme() -> Iterator[str]:
    """Each command of README's bash blocks, backslash-continued lines joined."""
    readme = (DEPLOY / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL):
        yield from join_continued_lines(block).splitlines()


def app_commands() -> list[tuple[str, list[str]]]:
    """(where, overrides) of every `nnts-ray` command in deploy/'s YAML files and README."""
    sources = [
        (str(path.relative_to(REPO)), command)
        for path in sorted(DEPLOY.rglob("*.yaml"))
        for doc in load_documents(path)
        for command in commands_in(doc)
    ] + [("deploy/README.md", command) for command in shell_commands_in_readme()]
    found = [(where, app_overrides(command)) for where, command in sources]
    return [(where, overrides) for where, overrides in found if overrides is not None]


def compose_app(overrides: list[str]) -> RunConfig:
    """Compose conf/ with these overrides and validate the result: the nnts-ray command line's own edge."""
    return load_config(overrides)


APP_COMMANDS = app_commands()


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_holds_mappings(path: Path) -> None:
    docs = load_documents(path)
    assert docs and all(isinstance(doc, dict) for doc in docs)


def test_kuberay_kinds_and_api_versions() -> None:
    versions = {kind: doc["apiVersion"] for kind, doc in kuberay_manifests().items()}
    assert versions == {"PersistentVolumeClaim": "v1", "RayCluster": "ray.io/v1", "RayJob": "ray.io/v1"}


def test_runs_claim_is_shared_by_all_nodes() -> None:
    spec = kuberay_manifests()["PersistentVolumeClaim"]["spec"]
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["resources"]["requests"]["storage"]


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
def test_cluster_has_a_head_and_gpu_workers(kind: str) -> None:
    spec = cluster_spec(kind)
    assert spec["rayVersion"] == dockerfile_arg("RAY_VERSION")
    groups = spec["workerGroupSpecs"]
    assert groups
    for params in [spec["headGroupSpec"]["rayStartParams"]] + [g["rayStartParams"] for g in groups]:
        assert all(isinstance(value, str) for value in params.values()), "KubeRay wants string params"
    for group in groups:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        resources = ray_container(group["template"])["resources"]
        assert str(resources["limits"][GPU]) == "1", group["groupName"]


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
def test_every_pod_mounts_the_runs_claim(kind: str) -> None:
    claim = kuberay_manifests()["PersistentVolumeClaim"]["metadata"]["name"]
    for group, template in pod_templates(cluster_spec(kind)):
        volumes = [v["name"] for v in template["spec"]["volumes"]
                   if v.get("persistentVolumeClaim", {}).get("claimName") == claim]
        mounts = {m["name"]: m["mountPath"] for m in ray_container(template)["volumeMounts"]}
        assert len(volumes) == 1 and mounts.get(volumes[0]) == RUNS_MOUNT, group


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
def test_every_pod_runs_the_image_under_kuberays_command(kind: str) -> None:
    for group, template in pod_templates(cluster_spec(kind)):
        container = ray_container(template)
        assert container["image"] == IMAGE, group
        # A command would be prepended to the `ray start` that KubeRay generates.
        assert "command" not in container and "args" not in container, group


def test_rayjob_cluster_is_the_raycluster() -> None:
    assert cluster_spec("RayJob") == cluster_spec("RayCluster")


def test_rayjob_deletes_its_cluster_after_the_run() -> None:
    spec = kuberay_manifests()["RayJob"]["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] > 0


def test_rayjob_runs_nnts_ray_on_the_cluster_into_the_claim() -> None:
    overrides = app_overrides(kuberay_manifests()["RayJob"]["spec"]["entrypoint"])
    assert overrides is not None, "the RayJob entrypoint must run nnts-ray"
    run = compose_app(overrides)
    assert run.ray.address == "auto"
    assert run.run_dir.startswith(RUNS_MOUNT + "/")


def test_cluster_launcher_matches_rays_schema() -> None:
    ray_spec = importlib.util.find_spec("ray")
    assert ray_spec is not None and ray_spec.origin is not None
    schema = json.loads((Path(ray_spec.origin).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(cluster_launcher(), schema)


def test_cluster_launcher_has_a_head_and_gpu_workers() -> None:
    config = cluster_launcher()
    node_types = config["available_node_types"]
    assert config["provider"]["type"] == "aws"
    assert config["head_node_type"] in node_types
    workers = [t for name, t in node_types.items() if name != config["head_node_type"]]
    assert any(t["resources"].get("GPU", 0) >= 1 and t["max_workers"] >= 1 for t in workers)
    assert config["file_mounts"]


def test_cluster_launcher_installs_faiss_gpu_instead_of_faiss_cpu() -> None:
    setup = "\n".join(cluster_launcher()["setup_commands"])
    assert f'"faiss-gpu=={dockerfile_arg("FAISS_GPU_VERSION")}"' in setup
    assert f'"ray[default,data]=={dockerfile_arg("RAY_VERSION")}"' in setup
    assert "pip uninstall -y faiss-cpu" in setup


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    assert APP_SCRIPT in console_scripts()
    (entrypoint,) = dockerfile_instructions()["ENTRYPOINT"]
    assert json.loads(entrypoint) == [APP_SCRIPT]


def test_app_commands_are_found_in_manifests_and_readme() -> None:
    places = {where for where, _ in APP_COMMANDS}
    assert {"deploy/kuberay/rayjob.yaml", "deploy/README.md"} <= places


@pytest.mark.parametrize(("where", "overrides"), APP_COMMANDS, ids=[w for w, _ in APP_COMMANDS])
def test_app_command_names_real_options(where: str, overrides: list[str]) -> None:
    assert compose_app(overrides).k


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["knn.metricz=l2"], "unknown config key 'knn.metricz'"),  # misspelled key
        (["ray.adress=auto"], "unknown config key 'ray.adress'"),  # misspelled key
        (["model=lenet6"], "model='lenet6' is not allowed"),  # no such config in a group
        (["knn.metric=l3"], "knn.metric='l3' is not allowed"),  # real key, value not allowed
    ],
)
def test_compose_rejects_options_that_do_not_exist(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose_app(overrides)
