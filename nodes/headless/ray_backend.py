"""Fan-out over a Ray cluster (the optional `ray` extra): actors that keep the node pack loaded.

Each actor is a FanoutWorker (fanout_worker.py): it loads the pack once and keeps its node cache
(the loaded VGG) for every task it gets; it returns each run's files as bytes and the driver alone
writes them. The driver keeps one task in flight per actor, so a fast actor simply gets more.
A worker that dies is restarted by Ray and its task retried (max_restarts / max_task_retries);
if the actor is still lost the driver starts a new one and sends the task again, up to RESUBMITS
times. Ctrl-C kills the actors (which cancels their tasks) and keeps the runs that had finished.
With no address a local cluster is started here and shut down at the end; a cluster that was
already connected in this process (ray.init by the caller) is used and left running.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterator, Optional

from .fanout_worker import FanoutWorker, TaskResult

__all__ = ["RayBackend", "RayMissing", "import_ray", "INSTALL_HINT", "LOCAL"]

INSTALL_HINT = "pip install 'comfyui-nst[ray]'  (or: pip install ray)"
LOCAL = "local"              # --ray without an address: start a local cluster
ACTOR_RESTARTS = 3           # Ray restarts a dead actor this often ...
TASK_RETRIES = 3             # ... and retries the task it was running
RESUBMITS = 2                # then the driver sends the task to a fresh actor this often
ACTOR_START_S = 300.0        # how long the actors may take to start (they import torch and the pack)
POLL_S = 1.0                 # ray.wait slices, so Ctrl-C is seen promptly


class RayMissing(RuntimeError):
    """--ray was asked for but the ray package is not installed."""


def import_ray():
    """The ray module, or RayMissing saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(f"--ray needs Ray, an optional extra that is not installed ({exc}); install it with: "
                         f"{INSTALL_HINT}") from exc
    return ray


class RayBackend:
    """`workers` actors of `threads` CPUs each on the cluster at `address` (or a local one)."""

    kind = "ray"

    def __init__(self, registry: Callable[[], tuple], address: Optional[str], workers: Optional[int],
                 threads: int, device: Optional[str]):
        self.ray = ray = import_ray()
        self.threads = threads
        self.started_here = False
        if not ray.is_initialized():
            options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            if address in (None, LOCAL):
                ray.init(num_cpus=(workers or os.cpu_count() or 1) * threads, **options)
            else:
                ray.init(address=address, **options)
            self.started_here = True
        try:
            self._gpus = 1 if (device or "").startswith("cuda") else 0
            self.workers = workers or self._cluster_slots()
            self._actor_class = ray.remote(FanoutWorker).options(
                num_cpus=threads, num_gpus=self._gpus, max_restarts=ACTOR_RESTARTS, max_task_retries=TASK_RETRIES)
            self._worker_args = (registry, threads, device, None)
            self.actors = [self._new_actor() for _ in range(self.workers)]
            self.worker_labels = self._wait_ready(self.actors)
        except BaseException:
            self.close()
            raise
        self._inflight: dict = {}
        self._left: dict = {}

    def _cluster_slots(self) -> int:
        resources = self.ray.cluster_resources()
        if self._gpus:
            return max(1, int(resources.get("GPU", 0)))
        return max(1, int(resources.get("CPU", 1) // self.threads))

    def _new_actor(self):
        return self._actor_class.remote(*self._worker_args)

    def _wait_ready(self, actors: list) -> list:
        """'host:pid' of each actor once it has loaded the pack; a clear error if they cannot start."""
        refs = [actor.where.remote() for actor in actors]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=ACTOR_START_S)
        if len(ready) < len(refs):
            raise RuntimeError(f"the Ray cluster started {len(ready)} of {len(refs)} workers "
                               f"({self.threads} CPU(s){' and 1 GPU' if self._gpus else ''} each) within "
                               f"{ACTOR_START_S:.0f}s; ask for fewer (--workers) or add nodes")
        return self.ray.get(refs)

    def run(self, tasks: list) -> Iterator[TaskResult]:
        ray = self.ray
        lost = (ray.exceptions.RayActorError,)
        self._left = left = {task.index: task for task in tasks}
        queue, free, attempts = sorted(left), list(self.actors), {}
        self._inflight = inflight = {}
        while queue or inflight:
            while queue and free:
                actor, index = free.pop(0), queue.pop(0)
                inflight[actor.run.remote(left[index].packed())] = (actor, index)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
            for ref in ready:
                actor, index = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except lost as exc:
                    attempts[index] = attempts.get(index, 0) + 1
                    free.append(self._replace(actor))
                    if attempts[index] <= RESUBMITS:
                        queue.insert(0, index)
                        continue
                    result = TaskResult(index, left[index].name, error=f"its Ray worker died "
                                        f"{attempts[index]} times (each after {TASK_RETRIES} retries): {exc}")
                except ray.exceptions.RayError as exc:   # not raised by FanoutWorker.run itself: a Ray problem
                    result = TaskResult(index, left[index].name, error=f"Ray could not run it: {exc}")
                    free.append(actor)
                else:
                    free.append(actor)
                left.pop(index, None)
                yield result

    def _replace(self, actor):
        """A new actor in place of one Ray could not bring back."""
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:   # noqa: BLE001 - it is gone already
            pass
        new = self._new_actor()
        self.actors = [new if a is actor else a for a in self.actors]
        return new

    def stop(self) -> Iterator[TaskResult]:
        """After Ctrl-C: keep the runs that finished, then kill the actors (cancelling their tasks)."""
        ray, finished = self.ray, []
        if self._inflight:
            ready, _ = ray.wait(list(self._inflight), num_returns=len(self._inflight), timeout=0)
            for ref in ready:
                try:
                    finished.append(ray.get(ref, timeout=10))
                except Exception:   # noqa: BLE001 - a lost run is simply not kept
                    pass
        self._kill_actors()
        return iter([r for r in finished if r.ok and r.index in self._left])

    def _kill_actors(self) -> None:
        for actor in getattr(self, "actors", []):
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:   # noqa: BLE001
                pass
        self.actors = []

    def close(self) -> None:
        self._kill_actors()
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()
