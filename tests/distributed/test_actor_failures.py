"""Worker processes of Ray actors die in the middle of a stage (SIGKILL from outside, as the OOM killer
or a lost node would) and the run still ends with exactly the rows of an undisturbed run.

The victim is caught *executing* a task (its process title names the method), frozen with SIGSTOP so
that the task can neither finish nor return, held while the rest of the stage runs on, then killed:
the task's result is certainly lost and must be recomputed by a restarted actor."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

import psutil
import pytest

from nnts_ray.cli import load_config
from nnts_ray.naming import RunPaths
from nnts_ray.pipeline import run
from tests.distributed.helpers import (
    actor_processes, assert_same_activations, assert_same_results, only_parquet_in_hive_trees, overrides, part_markers,
    process_title, raylets, wait_for,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ACTIVATION_ACTOR = "ActivationWriter"
SEARCH_ACTOR = "ShardSearcher"


@dataclass
class Kill:
    """What the killer saw when it struck one actor."""

    title: str  # the victim's process title when frozen: it was executing this method
    pid: int
    stage_done: bool  # the stage's completion marker existed when the victim was killed
    replaced_by: int | None = None  # pid of the worker that took the actor's place


@dataclass
class Killer:
    """Strikes one executing actor of each kind, in order, while the pipeline runs in this process."""

    nodes: list  # the raylets of the cluster the pipeline runs on
    paths: RunPaths
    kills: dict[str, Kill] = field(default_factory=dict)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # set when the run is over

    def freeze_executing(self, actor: str, ready) -> tuple[psutil.Process, str]:
        """SIGSTOP a worker of `actor` caught executing a method (not its constructor)."""
        def executing(title: str) -> bool:
            return title.startswith(f"ray::{actor}.") and not title.endswith(".__init__")

        while True:
            victim = wait_for(lambda: ready() and [p for p, t in actor_processes(self.nodes, actor) if executing(t)],
                              timeout=300, what=f"a {actor} task in flight", interval=0.002, stop=self.stop)[0]
            victim.send_signal(signal.SIGSTOP)
            title = process_title(victim)
            if executing(title):  # still inside the task: it can no longer finish or return
                return victim, title
            victim.send_signal(signal.SIGCONT)  # it finished in between: let it go, catch another

    def strike(self, actor: str, ready, stage_marker, hold: float) -> None:
        victim, title = self.freeze_executing(actor, ready)
        known = {p.pid for p, _ in actor_processes(self.nodes, actor)}
        try:
            time.sleep(hold)  # the rest of the stage goes on without it
            kill = Kill(title, victim.pid, stage_marker.is_file())
        finally:
            victim.send_signal(signal.SIGKILL)
        replacement = wait_for(lambda: [p for p, _ in actor_processes(self.nodes, actor) if p.pid not in known],
                               timeout=120, what=f"a restarted {actor}", stop=self.stop)
        kill.replaced_by = replacement[0].pid
        self.kills[actor] = kill

    def __call__(self) -> None:
        try:
            self.strike(ACTIVATION_ACTOR, lambda: True, self.paths.marker("activations", "lenet5"), hold=1.0)
            self.strike(SEARCH_ACTOR, lambda: part_markers(self.paths),
                        self.paths.marker("neighbours", "lenet5", "O"), hold=0.5)
        except BaseException as e:  # noqa: BLE001 — reported by the tests
            self.error = e


@pytest.fixture(scope="module")
def disturbed_run(ray_cluster, model_cache, tmp_path_factory):
    """The small configuration in this process's cluster, with a killer thread striking its actors."""
    rc = load_config(overrides(tmp_path_factory.mktemp("disturbed") / "run", model_cache))
    killer = Killer(raylets(ray_cluster.get_runtime_context().gcs_address), RunPaths(rc.run_dir))
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        run(rc)
    finally:
        killer.stop.set()  # never let it strike the actors of a later run
        thread.join(timeout=60)
    return RunPaths(rc.run_dir), killer


def _kill(killer: Killer, actor: str) -> Kill:
    assert actor in killer.kills, f"no {actor} was killed: {killer.error!r}"
    return killer.kills[actor]


def test_activation_actor_killed_mid_batch_is_retried(disturbed_run, reference_run):
    paths, killer = disturbed_run
    kill = _kill(killer, ACTIVATION_ACTOR)
    assert kill.title.startswith(f"ray::{ACTIVATION_ACTOR}.") and not kill.stage_done, kill
    assert kill.replaced_by not in (None, kill.pid)
    assert_same_activations(paths, reference_run)  # every row written, each exactly as undisturbed


def test_search_actor_killed_mid_search_is_retried(disturbed_run, reference_run):
    paths, killer = disturbed_run
    kill = _kill(killer, SEARCH_ACTOR)
    assert kill.title.startswith(f"ray::{SEARCH_ACTOR}.") and not kill.stage_done, kill
    assert kill.replaced_by not in (None, kill.pid)
    assert_same_results(paths, reference_run)  # n·k rows per probe point, none lost or doubled
    assert only_parquet_in_hive_trees(paths) == []
