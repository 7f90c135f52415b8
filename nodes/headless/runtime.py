"""Per-run context shared by the headless executor and the nodes it runs.

Nodes must not know which executor (if any) runs them, so the executor publishes the running
node, the progress sink, the cancel flag and the folders in a contextvar, and nodes call the
module functions below. Outside an executor run every function is a harmless no-op (or returns
the default folder).
"""
from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

__all__ = [
    "Interrupted",
    "ProgressSink",
    "report_progress",
    "check_interrupted",
    "current_node_id",
    "get_directory",
    "RunContext",
    "activate",
    "executing_node",
]


class Interrupted(Exception):
    """Raised when a headless run was asked to stop (the cancel flag is set)."""


# progress(node_id, value, total, preview_or_None): the one shape every progress sink has.
ProgressSink = Callable[[Optional[str], int, int, Any], None]


def _is_set(flag: Any) -> bool:
    """A cancel flag may be a threading.Event (or anything with is_set) or a callable."""
    if flag is None:
        return False
    if hasattr(flag, "is_set"):
        return bool(flag.is_set())
    if callable(flag):
        return bool(flag())
    return bool(flag)


@dataclass
class RunContext:
    """What the executor publishes for the nodes of one run."""

    progress: Optional[ProgressSink] = None
    cancel: Any = None
    input_dir: Optional[str] = None
    output_dir: Optional[str] = None
    temp_dir: Optional[str] = None
    node_id: Optional[str] = None


_CURRENT: contextvars.ContextVar[Optional[RunContext]] = contextvars.ContextVar(
    "comfyui_nst_run_context", default=None
)


@contextlib.contextmanager
def activate(ctx: RunContext) -> Iterator[RunContext]:
    """Make `ctx` the current run context for the duration of the block."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def executing_node(node_id: Optional[str]) -> Iterator[None]:
    """Mark `node_id` as the node being executed in the current context."""
    ctx = _CURRENT.get()
    if ctx is None:
        yield
        return
    previous, ctx.node_id = ctx.node_id, node_id
    try:
        yield
    finally:
        ctx.node_id = previous


def current_node_id() -> Optional[str]:
    """Id of the node being executed, or None outside a run."""
    ctx = _CURRENT.get()
    return ctx.node_id if ctx is not None else None


def check_interrupted() -> None:
    """Raise Interrupted if the current run was asked to stop; no-op outside a run."""
    ctx = _CURRENT.get()
    if ctx is not None and _is_set(ctx.cancel):
        raise Interrupted("the run was cancelled")


def report_progress(value: int, total: int, preview: Any = None) -> None:
    """Send progress (and an optional PIL preview) of the running node to the sink.

    Like ComfyUI's progress hook, this is also an interruption point.
    """
    ctx = _CURRENT.get()
    if ctx is None:
        return
    check_interrupted()
    if ctx.progress is not None:
        ctx.progress(ctx.node_id, int(value), int(total), preview)


_DEFAULT_DIRS = {"input": "input", "output": "output"}
_process_temp: list = []   # the lazily made temp folder of code that runs outside any executor run


def _temp_outside_a_run() -> str:
    """A private temp folder for this process, made on first use and removed when it exits.

    (A fixed shared folder under the system temp dir used to collect previews forever.)
    """
    if not _process_temp:
        path = tempfile.mkdtemp(prefix="nst-headless-")
        atexit.register(shutil.rmtree, path, True)
        _process_temp.append(path)
    return _process_temp[0]


def get_directory(kind: str) -> str:
    """Absolute path of the run's "input", "output" or "temp" folder.

    Defaults (outside a run, or when the executor was given none): ./input, ./output and, for
    "temp", a private folder removed when the process exits (an executor run has its own).
    """
    if kind not in ("input", "output", "temp"):
        raise ValueError(f"unknown directory kind {kind!r} (input, output or temp)")
    ctx = _CURRENT.get()
    path = getattr(ctx, f"{kind}_dir", None) if ctx is not None else None
    if not path:
        path = _temp_outside_a_run() if kind == "temp" else _DEFAULT_DIRS[kind]
    return os.path.abspath(path)
