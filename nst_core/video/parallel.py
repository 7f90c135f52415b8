"""Local processes for chunked clips: a map-like callable for stylize_frames(chunk_map=...).

Spawned processes (not forked: a fork of a process whose OpenMP threads already ran can hang), each with
its own torch thread count, so that two workers on two cores do not fight over them. Any other map works
the same: a concurrent.futures executor's `map`, or on Ray
`lambda run, jobs: ray.get([ray.remote(run).remote(job) for job in jobs])`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator

import torch


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not on Linux
        return os.cpu_count() or 1


def _set_threads(threads: int) -> None:
    torch.set_num_threads(threads)


@contextlib.contextmanager
def chunk_processes(workers: int = 2, threads: int | None = None) -> Iterator[Callable]:
    """`with chunk_processes(2) as chunk_map: stylize_frames(..., chunk_frames=8, chunk_map=chunk_map)`.

    threads: torch threads per worker (default: this machine's cores shared out among the workers)."""
    if int(workers) < 1:
        raise ValueError(f"workers must be 1 or more, got {workers}")
    threads = threads or max(1, usable_cores() // int(workers))
    pool = ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_set_threads, initargs=(int(threads),))
    try:
        yield pool.map
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["chunk_processes", "usable_cores"]
