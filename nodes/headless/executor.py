"""Run ComfyUI node graphs without ComfyUI.

The executor knows nothing of what the nodes do: it takes a mapping of class names
to node classes (V1 classes, or V3-shaped nodes described by a NodeSpec, run through
their V1 view: node_spec.py) and reproduces ComfyUI's calling convention (keyword inputs,
hidden inputs, list mapping, INPUT_IS_LIST / OUTPUT_IS_LIST, ui results), its
validation, its run-only-what-outputs-need order, its output cache (class + literal
inputs + IS_CHANGED + upstream keys, kept across runs of one Executor) and its
torch.inference_mode() around the run, so that a workflow behaves the same here and
inside ComfyUI. As in ComfyUI, an output node that fails validation is skipped (its
problems are in RunResult.skipped / .validation_error) while the valid outputs run.
Previews (the "temp" folder) belong to the run: without a temp_dir each run gets its own
folder, removed when the run ends.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional

from .cache import OutputCache
from .format import Workflow, load_workflow
from .graph import execution_order, input_info, is_link, node_title
from .node_spec import runnable
from .runtime import (Interrupted, ProgressSink, RunContext, activate, check_interrupted, executing_node,
                      get_directory)
from .validation import PromptValidation, ValidationError, validate_outputs

__all__ = ["Executor", "ExecutionError", "RunResult", "ValidationError", "Interrupted", "run_workflow"]

log = logging.getLogger("comfyui_nst.executor")


class ExecutionError(RuntimeError):
    """A node raised while running; names the node and keeps the original exception."""

    def __init__(self, node_id: str, class_type: str, title: Optional[str], exception: BaseException,
                 traceback_text: str = "", executed: tuple = (), current_inputs: Optional[dict] = None):
        self.node_id, self.class_type, self.title = node_id, class_type, title
        self.exception = exception
        self.exception_type = type(exception).__name__
        self.exception_message = str(exception)
        self.traceback = traceback_text
        self.executed = list(executed)
        self.current_inputs = current_inputs or {}
        label = class_type if not title or title == class_type else f"{class_type} {title!r}"
        super().__init__(f"node {node_id} ({label}) failed: {self.exception_type}: {self.exception_message}")


@dataclass
class RunResult:
    """What a run produced: ui outputs per node (like ComfyUI's history) and the files they name."""

    prompt: dict
    outputs: dict
    executed: list
    cached: list
    files: list = field(default_factory=list)     # files in the output folder named by ui results
    previews: list = field(default_factory=list)  # files in the temp folder (PreviewImage); gone after the
    #                                               run unless the executor was given a temp_dir
    warnings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)   # output node ids not run: they failed validation
    validation_error: Optional[ValidationError] = None  # the problems of the skipped outputs, if any

    @property
    def problems(self) -> list:
        """The validation problems of the skipped outputs (empty when nothing was skipped)."""
        return list(self.validation_error.problems) if self.validation_error is not None else []

    def node_errors(self) -> dict:
        """ComfyUI-shaped node_errors of the skipped outputs ({} when nothing was skipped)."""
        return self.validation_error.node_errors() if self.validation_error is not None else {}


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."


class Executor:
    """Validates and runs workflows; reuse one instance to reuse cached node results."""

    def __init__(self, node_classes: Mapping[str, Any], *, input_dir: Optional[str] = None,
                 output_dir: Optional[str] = None, temp_dir: Optional[str] = None,
                 display_names: Optional[Mapping[str, str]] = None,
                 progress: Optional[ProgressSink] = None, cancel: Any = None):
        self.node_classes = runnable(node_classes)
        self.display_names = dict(display_names or {})
        self.input_dir, self.output_dir, self.temp_dir = input_dir, output_dir, temp_dir
        self.progress, self.cancel = progress, cancel
        self._cache = OutputCache()
        self._objects: dict = {}

    # ---------------------------------------------------------------- public API

    def context(self, progress: Optional[ProgressSink] = None, cancel: Any = None,
                temp_dir: Optional[str] = None) -> RunContext:
        return RunContext(progress=progress or self.progress, cancel=cancel if cancel is not None else self.cancel,
                          input_dir=self.input_dir, output_dir=self.output_dir, temp_dir=temp_dir or self.temp_dir)

    def load(self, workflow: Any) -> Workflow:
        """Read a workflow (path, dict in UI/API format, or Workflow) into a Workflow."""
        with activate(self.context()):
            return load_workflow(workflow, self.node_classes, self.display_names)

    def check(self, workflow: Any) -> PromptValidation:
        """Per-output validation (ComfyUI's): which outputs can run, and the others' problems.

        Raises ValidationError only for whole-graph problems or when no output is valid.
        """
        with activate(self.context()):
            wf = load_workflow(workflow, self.node_classes, self.display_names)
            return validate_outputs(wf.prompt, self.node_classes, {"extra_pnginfo": wf.extra_pnginfo})

    def validate(self, workflow: Any) -> dict:
        """The validated API graph (constants coerced).

        Strict (the `nst-run --validate` check): raises ValidationError on any problem,
        even one that `run` would handle by skipping the outputs it affects.
        """
        checked = self.check(workflow)
        if checked.problems:
            raise checked.error()
        return checked.prompt

    def clear_cache(self) -> None:
        self._cache.clear()
        self._objects.clear()

    def forget_outputs(self) -> None:
        """Forget the cached results of output nodes, keeping the rest (a loaded network, say).

        For a worker that runs many workflows into fresh folders: a cached SaveImage would name
        files of an earlier run instead of saving this run's.
        """
        self._cache.forget_classes(name for name, cls in self.node_classes.items()
                                   if getattr(cls, "OUTPUT_NODE", False) is True)

    def run(self, workflow: Any, *, progress: Optional[ProgressSink] = None, cancel: Any = None,
            extra_pnginfo: Optional[dict] = None) -> RunResult:
        """Validate then run what the valid output nodes need, in dependency order.

        As in ComfyUI, output nodes that fail validation are skipped and the others run;
        the skipped ones and their problems are in `RunResult.skipped` and
        `RunResult.validation_error`. Raises ValidationError (nothing ran: no output is
        valid, or a whole-graph problem such as an unknown node type), ExecutionError (a
        node failed; earlier results stay cached) or Interrupted (the cancel flag was set).
        """
        with self._run_temp_dir() as temp_dir, activate(self.context(progress, cancel, temp_dir)):
            wf = load_workflow(workflow, self.node_classes, self.display_names)
            extra = extra_pnginfo if extra_pnginfo is not None else wf.extra_pnginfo
            checked = validate_outputs(wf.prompt, self.node_classes, {"extra_pnginfo": extra})
            if checked.failed_outputs:
                log.info("skipping output node(s) %s, which failed validation:\n%s",
                         ", ".join(checked.failed_outputs), checked.error())
            order, _ = execution_order(checked.prompt, checked.good_outputs)
            import torch  # deferred: loading/validating a workflow does not need it

            with torch.inference_mode():
                result = self._execute_all(checked.prompt, order, extra)
            result.warnings = list(wf.warnings)
            result.skipped = list(checked.failed_outputs)
            result.validation_error = checked.error()
            return result

    # ---------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _run_temp_dir(self) -> Iterator[Optional[str]]:
        """The run's own temp folder (removed afterwards) when the executor was given none."""
        if self.temp_dir:
            yield None
            return
        path = tempfile.mkdtemp(prefix="nst-run-")
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def _execute_all(self, prompt: dict, order: list, extra: Optional[dict]) -> RunResult:
        keys = self._cache.signatures(prompt, order, self.node_classes,
                                      lambda nid: self._is_changed(prompt, nid))
        self._cache.keep_only(keys.values())
        values: dict = {}
        ui: dict = {}
        executed, cached = [], []
        for nid in order:
            key = keys[nid]
            hit = self._cache.get(key)
            if hit is not None:
                values[nid], node_ui = hit
                cached.append(nid)
            else:
                check_interrupted()
                values[nid], node_ui = self._execute_node(prompt, nid, values, extra, executed)
                executed.append(nid)
                self._cache.put(key, (values[nid], node_ui))
            if node_ui:
                ui[nid] = node_ui
        files = self._files(ui)
        return RunResult(prompt=prompt, outputs=ui, executed=executed, cached=cached,
                         files=[f for f, kind in files if kind == "output"],
                         previews=[f for f, kind in files if kind == "temp"])

    def _is_changed(self, prompt: dict, nid: str) -> Any:
        node_class = self.node_classes[prompt[nid]["class_type"]]
        fn = getattr(node_class, "IS_CHANGED", None)
        if fn is None:
            return False
        kwargs = self._input_data(prompt, nid, node_class, values=None)
        try:
            with executing_node(nid):
                return fn(**{k: v[0] for k, v in kwargs.items()})
        except Exception as exc:  # ComfyUI: a warning, and the node always re-runs
            log.warning("IS_CHANGED of node %s failed: %s", nid, exc)
            return float("nan")

    def _input_data(self, prompt: dict, nid: str, node_class: Any, values: Optional[dict],
                    extra: Optional[dict] = None) -> dict:
        """Inputs as lists (ComfyUI's get_input_data); links are None when values is None."""
        types = node_class.INPUT_TYPES()
        data = {}
        for name, value in (prompt[nid].get("inputs") or {}).items():
            _, category, _ = input_info(types, name)
            if is_link(value):
                data[name] = [None] if values is None else values[value[0]][int(value[1])]
            elif category is not None:
                data[name] = [value]
        for name, kind in (types.get("hidden") or {}).items():
            data[name] = [{"PROMPT": prompt, "EXTRA_PNGINFO": extra, "UNIQUE_ID": nid}.get(kind)]
        return data

    def _execute_node(self, prompt: dict, nid: str, values: dict, extra: Optional[dict], executed: list):
        node = prompt[nid]
        class_type = node["class_type"]
        node_class = self.node_classes[class_type]
        data = {}
        try:
            data = self._input_data(prompt, nid, node_class, values, extra)
            obj = self._objects.get((nid, class_type))
            if obj is None:
                obj = self._objects[(nid, class_type)] = node_class()
            fn = getattr(obj, node_class.FUNCTION)
            with executing_node(nid):
                returns = self._map_over_lists(node_class, fn, data)
            return self._merge(node_class, returns)
        except Interrupted as exc:
            raise Interrupted(f"cancelled while running node {nid} ({class_type})") from exc
        except Exception as exc:
            inputs = {k: [_format_value(x) for x in v] for k, v in data.items()
                      if k not in ("prompt", "extra_pnginfo")}
            raise ExecutionError(nid, class_type, node_title(node), exc, traceback.format_exc(),
                                 tuple(executed), inputs) from exc

    @staticmethod
    def _map_over_lists(node_class: Any, fn: Callable, data: dict) -> list:
        if getattr(node_class, "INPUT_IS_LIST", False):
            check_interrupted()
            return [fn(**data)]
        for name, items in data.items():
            if len(items) == 0:
                raise ValueError(f"input {name!r} received an empty list")
        count = max((len(v) for v in data.values()), default=1)
        returns = []
        for i in range(count):
            check_interrupted()
            returns.append(fn(**{k: v[min(i, len(v) - 1)] for k, v in data.items()}))
        return returns

    @staticmethod
    def _merge(node_class: Any, returns: list) -> tuple:
        """Per-slot output lists and the merged ui dict (ComfyUI's get_output_from_returns)."""
        n_out = len(getattr(node_class, "RETURN_TYPES", ()))
        results, uis = [], []
        for r in returns:
            if isinstance(r, Mapping):
                if "expand" in r:
                    raise NotImplementedError("node expansion ({'expand': ...}) is not supported headless")
                if "ui" in r and r["ui"]:
                    uis.append(r["ui"])
                if "result" in r and r["result"] is not None:
                    results.append(tuple(r["result"]))
            elif isinstance(r, (tuple, list)):
                results.append(tuple(r))
            elif r is None and n_out == 0:
                continue
            else:
                raise TypeError(f"{node_class.FUNCTION}() must return a tuple (or a dict with 'result'/'ui'), "
                                f"not {type(r).__name__}")
        for r in results:
            if len(r) != n_out:
                raise TypeError(f"{node_class.FUNCTION}() returned {len(r)} value(s) but RETURN_TYPES has {n_out}")
        is_list = tuple(getattr(node_class, "OUTPUT_IS_LIST", ())) + (False,) * n_out
        outputs = []
        for i in range(n_out):
            if is_list[i]:
                outputs.append([item for r in results for item in r[i]])
            else:
                outputs.append([r[i] for r in results])
        ui: dict = {}
        for u in uis:
            for key, items in u.items():
                ui.setdefault(key, []).extend(items if isinstance(items, (list, tuple)) else [items])
        return outputs, ui

    @staticmethod
    def _files(ui: dict) -> list:
        files = []
        for node_ui in ui.values():
            for items in node_ui.values():
                for item in items:
                    if isinstance(item, Mapping) and "filename" in item and item.get("type") in ("output", "temp", "input"):
                        path = os.path.join(get_directory(item["type"]), item.get("subfolder") or "", item["filename"])
                        files.append((os.path.normpath(path), item["type"]))
        return files


def run_workflow(workflow: Any, node_classes: Mapping[str, Any], **options: Any) -> RunResult:
    """One-shot convenience: Executor(node_classes, **options).run(workflow)."""
    run_options = {k: options.pop(k) for k in ("extra_pnginfo",) if k in options}
    return Executor(node_classes, **options).run(workflow, **run_options)
