"""Fan-out on this machine: in the driver's own process (serial) or over N local worker processes.

Workers are 'spawn' processes (no fork of a process that holds torch threads), each loading the
node pack once and keeping its FanoutWorker (and so its cached node results) for every task it
gets. They ignore SIGINT: Ctrl-C reaches the driver, which sets the shared cancel flag so each
running task stops at its next step, keeps whatever finished, and exits. A worker that dies (the
pool breaks) has its unfinished tasks run again in a new pool, up to RESTARTS times.
"""
from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Optional

from .fanout_worker import FanoutWorker, Task, TaskResult

__all__ = ["SerialBackend", "ProcessBackend", "RESTARTS"]

RESTARTS = 2            # new pools after a worker died, before the unfinished runs are given up
IN_FLIGHT_PER_WORKER = 2
CANCEL_WAIT_S = 60.0    # how long Ctrl-C waits for running tasks to reach their next step


class SerialBackend:
    """Every task in this process, one after the other (the reference the others must match)."""

    kind = "serial"

    def __init__(self, registry: Callable[[], tuple], threads: Optional[int], device: Optional[str]):
        import torch

        self._threads_before = torch.get_num_threads()
        self.worker = FanoutWorker(registry, threads, device)
        self.workers, self.threads = 1, self.worker.threads

    def run(self, tasks: list) -> Iterator[TaskResult]:
        for task in tasks:
            yield self.worker.run(task.packed())

    def stop(self) -> Iterator[TaskResult]:
        """Ctrl-C stopped the run in this very process: nothing else is running."""
        return iter(())

    def close(self) -> None:
        import torch

        torch.set_num_threads(self._threads_before)


_WORKER: Optional[FanoutWorker] = None


def _start_worker(registry: Callable[[], tuple], threads: Optional[int], device: Optional[str], cancel: Any) -> None:
    """Pool initializer: the one FanoutWorker of this process (Ctrl-C is the driver's business)."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = FanoutWorker(registry, threads, device, cancel)


def _run_in_worker(task: Task) -> TaskResult:
    return _WORKER.run(task)


def _threads_of_worker() -> int:
    return _WORKER.threads


class ProcessBackend:
    """N spawned worker processes; results arrive as runs finish (in any order)."""

    kind = "processes"

    def __init__(self, registry: Callable[[], tuple], workers: int, threads: int, device: Optional[str]):
        self.workers, self.threads = workers, threads
        self._args = (registry, threads, device)
        self._context = multiprocessing.get_context("spawn")
        self._cancel = self._context.Event()
        self._pool: Optional[ProcessPoolExecutor] = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context, initializer=_start_worker,
                                   initargs=(*self._args, self._cancel))

    def run(self, tasks: list) -> Iterator[TaskResult]:
        self._left = left = {task.index: task for task in tasks}
        for attempt in range(RESTARTS + 1):
            self._pool = self._new_pool()
            self._futures = futures = {}
            queue, pending, broken = sorted(left), set(), False
            try:
                while queue or pending:
                    # a few tasks in flight per worker: input images are read as their task is sent
                    while queue and not broken and len(pending) < IN_FLIGHT_PER_WORKER * self.workers:
                        index = queue.pop(0)
                        future = self._pool.submit(_run_in_worker, left[index].packed())
                        futures[future] = index
                        pending.add(future)
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: futures[f]):
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        left.pop(futures[future], None)
                        yield result
            except BaseException:   # Ctrl-C, or the driver stopped reading: running tasks stop at their next step
                self._cancel.set()
                raise
            finally:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            if not broken or not left:
                return
        for index in sorted(left):
            yield TaskResult(index, left[index].name,
                             error=f"a worker process died {RESTARTS + 1} times while running it; gave up")

    def stop(self) -> Iterator[TaskResult]:
        """After Ctrl-C: cancel, then the results of runs that still finished whole."""
        self.cancel()
        futures, left = getattr(self, "_futures", {}), getattr(self, "_left", {})
        wait(list(futures), timeout=CANCEL_WAIT_S)
        for future, index in sorted(futures.items(), key=lambda item: item[1]):
            if future.done() and not future.cancelled() and future.exception() is None and index in left:
                result = future.result()
                if result.ok:
                    left.pop(index)
                    yield result

    def cancel(self) -> None:
        """Stop: pending tasks are dropped, running ones end at their next step."""
        self._cancel.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
