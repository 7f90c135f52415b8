"""One run of a fan-out, as a worker does it (in the driver, a local process or a Ray actor alike).

A worker loads the node pack once and keeps one Executor, so cached node results (the loaded VGG)
serve every task it gets. Each task runs in a private temp folder: its input files arrive as bytes
with the task, and everything the run writes comes back as bytes in the TaskResult; the driver
alone writes the final files. The same code runs in every mode, so a sweep gives the same bytes
serially, with --workers and with --ray (at the same torch thread count).
"""
from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .executor import ExecutionError, Executor
from .files import PARTIAL_PREFIX, inside
from .runtime import Interrupted
from .text_outputs import collect_texts, save_texts
from .validation import ValidationError

__all__ = ["Task", "OutputFile", "TaskResult", "FanoutWorker", "set_torch_threads"]

PREVIEWS_OFF, PREVIEWS_IN_OUTPUT, PREVIEWS_IN_TEMP = "off", "output", "temp"


@dataclass
class Task:
    """What a worker needs for one run: the graph with the run's values, and its input files."""

    index: int
    name: str                                  # "run_0001"
    prompt: dict                               # API graph, values applied
    extra_pnginfo: Optional[dict] = None       # what SaveImage embeds next to the prompt
    input_files: dict = field(default_factory=dict)   # {name relative to the input folder: bytes}
    previews: str = PREVIEWS_OFF               # where PreviewImage pictures go (off, output, temp)
    input_paths: dict = field(default_factory=dict)   # {name: path on the driver}, read by packed()

    def packed(self) -> "Task":
        """This task with its input files read into bytes (done as it is sent, to bound memory)."""
        files = dict(self.input_files)
        for name, path in self.input_paths.items():
            with open(path, "rb") as fh:
                files[name] = fh.read()
        return dataclasses.replace(self, input_files=files, input_paths={})


@dataclass
class OutputFile:
    kind: str      # "output" or "temp" (previews kept with --temp-dir)
    path: str      # relative, "/"-separated: "NST/style_transfer_00001_.png"
    data: bytes


@dataclass
class TaskResult:
    """What came of one run; `files` holds every finished file, even when a later node failed."""

    index: int
    name: str
    files: list = field(default_factory=list)      # [OutputFile], sorted by (kind, path)
    texts: list = field(default_factory=list)      # [(node label, path of its .txt, text)]
    executed: int = 0
    cached: int = 0
    skipped: list = field(default_factory=list)    # output node labels skipped by validation
    problems: str = ""                             # their validation problems
    error: Optional[str] = None                    # "node 7 (...) failed: ..." when the run failed
    traceback: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    worker: str = ""                               # "host:pid", for messages

    @property
    def ok(self) -> bool:
        return self.error is None and not self.interrupted


def set_torch_threads(threads: Optional[int]) -> int:
    """Fix torch's intra-op thread count (results are bit-identical only at equal counts); the count."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _collect(folder: str, kind: str) -> list:
    """Every finished file under `folder` (never a writer's hidden partial file), sorted."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if name.startswith(PARTIAL_PREFIX):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                found.append(OutputFile(kind, os.path.relpath(path, folder).replace(os.sep, "/"), fh.read()))
    return found


class FanoutWorker:
    """Runs tasks with one Executor over the node pack that `registry()` returns.

    `registry` must be picklable (a module-level function) when the worker lives in another
    process; `cancel` is a flag (threading/multiprocessing Event) that stops a run at its next step.
    """

    def __init__(self, registry: Callable[[], tuple], threads: Optional[int] = None,
                 device: Optional[str] = None, cancel: Any = None):
        if device:
            os.environ["NST_DEVICE"] = device
        self.threads = set_torch_threads(threads)
        classes, names = registry()
        self.executor = Executor(classes, display_names=names, cancel=cancel)
        self.label = f"{socket.gethostname()}:{os.getpid()}"

    def where(self) -> str:
        """'host:pid' of this worker (tests use the pid to stop a worker on purpose)."""
        return self.label

    def run(self, task: Task) -> TaskResult:
        started = time.monotonic()
        result = TaskResult(task.index, task.name, worker=self.label)
        with tempfile.TemporaryDirectory(prefix="nst-fanout-") as root:
            folders = {kind: os.path.join(root, kind) for kind in ("input", "output", "temp")}
            for folder in folders.values():
                os.makedirs(folder)
            ex = self.executor
            ex.input_dir, ex.output_dir = folders["input"], folders["output"]
            ex.temp_dir = {PREVIEWS_OFF: None, PREVIEWS_IN_OUTPUT: folders["output"],
                           PREVIEWS_IN_TEMP: folders["temp"]}[task.previews]
            ex.forget_outputs()
            try:
                self._place_inputs(folders["input"], task.input_files)
                self._run(task, result, folders["output"])
            except ValueError as exc:
                result.error = str(exc)
            finally:
                result.files = _collect(folders["output"], "output")
                if task.previews == PREVIEWS_IN_TEMP:
                    result.files += _collect(folders["temp"], "temp")
        result.seconds = time.monotonic() - started
        return result

    def _run(self, task: Task, result: TaskResult, output_dir: str) -> None:
        from .graph import node_label

        try:
            run = self.executor.run(task.prompt, extra_pnginfo=task.extra_pnginfo)
        except ExecutionError as exc:
            result.error, result.traceback = str(exc), exc.traceback
            return
        except ValidationError as exc:
            result.error = str(exc)
            return
        except Interrupted:
            result.interrupted = True
            return
        except Exception as exc:  # noqa: BLE001 - a worker reports, the driver decides
            result.error, result.traceback = f"{type(exc).__name__}: {exc}", traceback.format_exc()
            return
        texts = collect_texts(run)
        save_texts(run, texts, output_dir)
        result.texts = [(t.label, os.path.relpath(t.path, output_dir).replace(os.sep, "/"), t.text) for t in texts]
        result.executed, result.cached = len(run.executed), len(run.cached)
        result.skipped = [node_label(nid, run.prompt[nid]) for nid in run.skipped]
        result.problems = str(run.validation_error) if run.validation_error is not None else ""

    @staticmethod
    def _place_inputs(folder: str, files: dict) -> None:
        for name, data in sorted(files.items()):
            path = os.path.join(folder, name)
            if os.path.isabs(name) or not inside(folder, path):
                raise ValueError(f"input file name {name!r} leaves the input folder")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
