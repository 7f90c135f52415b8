"""The fan-out driver of `nst-run`: many runs of one workflow (--sweep, --inputs) serially, over local
processes (--workers N) or a Ray cluster (--ray [ADDRESS]).

Plan (every run's graph built and validated before anything runs), then run on a backend, writing
each finished run's files into its own run_NNNN/ folder (run_folders.py) and recording its values
in manifest.json and in every PNG (the "fanout" text chunk, next to the prompt and workflow that
ComfyUI embeds). Workers run the same code in every mode (fanout_worker.py), so at the same torch
thread count per worker the files are byte-identical whichever way the sweep ran.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, TextIO

from .executor import Executor
from .fanout_worker import PREVIEWS_IN_OUTPUT, PREVIEWS_IN_TEMP, PREVIEWS_OFF, Task, TaskResult
from .files import resolve_input_file
from .format import UPLOAD_OPTIONS, Workflow
from .graph import input_info
from .overrides import OverrideError
from .run_folders import MANIFEST_NAME, RunFolders
from .runtime import RunContext, activate
from .sweep import RunPoint, apply_point, inputs_axis, parse_sweep, run_points
from .validation import ValidationError

__all__ = ["FanoutOptions", "FanoutPlan", "FanoutUsageError", "plan_fanout", "run_fanout", "default_threads",
           "PNG_KEY"]

PNG_KEY = "fanout"   # the PNG text chunk (and extra_pnginfo key) holding a run's values


class FanoutUsageError(ValueError):
    """The fan-out options cannot work together (exit 2: bad usage)."""


@dataclass
class FanoutOptions:
    sweeps: list = field(default_factory=list)      # ["NODE.INPUT=V1,V2", ...]
    inputs: Optional[str] = None                    # --inputs DIR
    inputs_node: Optional[str] = None               # --inputs-node NODE
    workers: Optional[int] = None                   # --workers N (None: 1 locally, the cluster's size on Ray)
    ray: Optional[str] = None                       # --ray [ADDRESS]: None (not Ray), "local" or an address
    threads: Optional[int] = None                   # torch threads per worker
    input_dir: str = "input"
    output_dir: str = "output"
    temp_dir: Optional[str] = None                  # --temp-dir: previews kept under DIR/run_NNNN/
    save_previews: bool = False
    device: Optional[str] = None


@dataclass
class FanoutPlan:
    workflow: Workflow
    axes: list
    points: list
    tasks: list


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def default_threads(workers: int, ray: bool) -> int:
    """Torch threads per worker: the cores shared out locally (1 each when N workers share N cores);
    1 on Ray, where each actor reserves that many CPUs."""
    return 1 if ray else max(1, usable_cores() // max(1, workers))


# ---------------------------------------------------------------- plan

def _file_inputs(prompt: Mapping, node_classes: Mapping) -> list:
    """[(node id, input name, value)] of the inputs that name a file of the input folder (upload combos)."""
    found = []
    for nid, node in prompt.items():
        node_class = node_classes.get(node.get("class_type"))
        if node_class is None:
            continue
        types = node_class.INPUT_TYPES()
        for name, value in (node.get("inputs") or {}).items():
            _, category, opts = input_info(types, name)
            if category in ("required", "optional") and isinstance(value, str) \
                    and any((opts or {}).get(k) for k in UPLOAD_OPTIONS):
                found.append((nid, name, value))
    return found


def _input_paths(prompt: Mapping, node_classes: Mapping, input_dir: str, swept: set) -> dict:
    """{name: path} of the input-folder files the graph reads, except the inputs the fan-out sets."""
    paths = {}
    with activate(RunContext(input_dir=input_dir)):
        for nid, name, value in _file_inputs(prompt, node_classes):
            if (nid, name) in swept:
                continue
            try:
                path = resolve_input_file(value)
            except ValueError:
                continue   # validation names the node and input
            if os.path.isfile(path) and not value.rstrip().endswith("]"):
                paths[value] = path
    return paths


def _stage(folder: str, paths: dict) -> None:
    """Put the run inputs in a private folder for validation (a hard link where possible, else a copy)."""
    for name, path in paths.items():
        target = os.path.join(folder, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            continue
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)


def plan_fanout(workflow: Workflow, options: FanoutOptions, node_classes: Mapping,
                display_names: Mapping) -> FanoutPlan:
    """Every run's graph and input files, validated before anything runs.

    Stricter than a single run, which skips the outputs that fail validation: a sweep runs only when
    every run is valid. Raises OverrideError (a bad --sweep / --inputs) or ValidationError (every
    problem of every run, each followed by the run and its values).
    """
    prompt = workflow.prompt
    axes = []
    if options.inputs is not None:
        axes.append(inputs_axis(options.inputs, options.inputs_node, prompt))
    elif options.inputs_node is not None:
        raise FanoutUsageError("--inputs-node needs --inputs DIR")
    axes += [parse_sweep(text, prompt, node_classes) for text in options.sweeps]
    seen = {}
    for axis in axes:
        key = (axis.node_id, axis.input_name)
        if key in seen:
            raise OverrideError(f"--sweep {axis.label}: node {axis.node_id}'s input {axis.input_name!r} is already "
                                f"swept by {seen[key]}")
        seen[key] = axis.label
    points = run_points(axes)
    from_dir = {(axis.node_id, axis.input_name) for axis in axes if axis.files}   # the --inputs node
    graphs = {point.index: apply_point(prompt, point) for point in points}
    run_inputs = {}
    for point in points:   # the input-folder files each run's graph names, then its --inputs image
        files = _input_paths(graphs[point.index], node_classes, options.input_dir, from_dir)
        for name, path in point.input_files().items():
            if name in files and not _same_file(files[name], path):
                raise OverrideError(f"--inputs: {name!r} is also the name of another LoadImage's file in "
                                    f"{options.input_dir}; rename one of them")
            files[name] = path
        run_inputs[point.index] = files
    previews = (PREVIEWS_IN_OUTPUT if options.save_previews else
                PREVIEWS_IN_TEMP if options.temp_dir else PREVIEWS_OFF)
    tasks, failures = [], []
    with tempfile.TemporaryDirectory(prefix="nst-fanout-check-") as staging:
        _stage(staging, {name: path for files in run_inputs.values() for name, path in files.items()})
        checker = Executor(node_classes, input_dir=staging, display_names=display_names)
        for point in points:
            graph = graphs[point.index]
            try:
                checked = checker.check(Workflow(graph, workflow.format, ui=workflow.ui,
                                                 extra_pnginfo=workflow.extra_pnginfo))
            except ValidationError as exc:
                failures.append((point, exc))
                continue
            if checked.problems:   # strict, as --validate: a typo in one value must not surface hours later
                failures.append((point, checked.error()))
                continue
            extra = dict(workflow.extra_pnginfo or {})
            extra[PNG_KEY] = {"run": point.name, "values": point.values()}
            tasks.append(Task(point.index, point.name, graph, extra, previews=previews,
                              input_paths=run_inputs[point.index]))
    if failures:
        raise _failed_runs(failures)
    return FanoutPlan(workflow, axes, points, tasks)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _values_text(point: RunPoint) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.values().items())


def _failed_runs(failures: list) -> ValidationError:
    """One ValidationError listing every run that cannot run, each problem prefixed by its run."""
    from .validation import Problem

    problems = []
    for point, exc in failures:
        for p in exc.problems:
            problems.append(Problem(p.node_id, p.class_type, p.input_name,
                                    f"{p.message} [{point.name}: {_values_text(point)}]", p.type, p.title))
    return ValidationError(problems)


# ---------------------------------------------------------------- run

def _backend(options: FanoutOptions, registry: Callable[[], tuple]):
    workers = options.workers
    threads = options.threads or default_threads(workers or 1, options.ray is not None)
    if options.ray is not None:
        from .ray_backend import RayBackend

        return RayBackend(registry, options.ray, workers, threads, options.device)
    if (workers or 1) > 1:
        from .local_pool import ProcessBackend

        _check_picklable(registry)
        return ProcessBackend(registry, workers, threads, options.device)
    from .local_pool import SerialBackend

    return SerialBackend(registry, threads, options.device)


def _check_picklable(registry: Callable) -> None:
    try:
        pickle.loads(pickle.dumps(registry))
    except Exception as exc:   # noqa: BLE001
        raise FanoutUsageError(f"--workers: the node registry {registry!r} cannot be sent to worker processes "
                               f"({exc}); it must be a module-level function") from exc


def _header(workflow: Workflow, plan: FanoutPlan, backend: Any, options: FanoutOptions) -> dict:
    return {
        "workflow": workflow.source,
        "backend": backend.kind,
        "ray_address": options.ray if options.ray is not None else None,
        "workers": backend.workers,
        "torch_threads_per_worker": backend.threads,
        "device": options.device or os.environ.get("NST_DEVICE") or "auto",
        "axes": [{"label": a.label, "node": a.node_id, "input": a.input_name,
                  "values": [RunPoint(0, [(a, i)]).values()[a.label] for i in range(len(a.values))]}
                 for a in plan.axes],
        "inputs_folder": os.path.abspath(options.inputs) if options.inputs else None,
        "output_dir": os.path.abspath(options.output_dir),
    }


def _runs(plan: FanoutPlan) -> list:
    return [{"run": p.name, "values": p.values(), "status": "pending", "files": [], "texts": []}
            for p in plan.points]


@dataclass
class FanoutOutcome:
    results: dict = field(default_factory=dict)     # {index: TaskResult} of the runs that came back
    written: dict = field(default_factory=dict)     # {index: [paths]}
    interrupted: bool = False
    seconds: float = 0.0
    manifest: str = ""


def run_fanout(plan: FanoutPlan, options: FanoutOptions, registry: Callable[[], tuple], err: TextIO,
               on_result: Optional[Callable[[TaskResult, Any], None]] = None) -> FanoutOutcome:
    """Run the plan's tasks on the chosen backend; files are written as each run finishes.

    KeyboardInterrupt is caught: the runs that finished are kept and outcome.interrupted is set.
    `on_result(result, backend)` is called after each run's files are written (tests use it).
    """
    outcome = FanoutOutcome()
    started = time.monotonic()
    backend = _backend(options, registry)
    try:
        folders = RunFolders(options.output_dir, _header(plan.workflow, plan, backend, options), _runs(plan),
                             temp_dir=options.temp_dir)
        outcome.manifest = os.path.join(folders.output_dir, MANIFEST_NAME)
        err.write(f"fan-out: {len(plan.tasks)} run(s) on {_where(backend)}\n")
        try:
            for result in backend.run(plan.tasks):
                _record(folders, plan, result, outcome, err)
                if on_result is not None:
                    on_result(result, backend)
        except KeyboardInterrupt:
            outcome.interrupted = True
            err.write("fan-out: interrupted; stopping the workers and keeping the runs that finished\n")
            for result in backend.stop():
                _record(folders, plan, result, outcome, err)
            for entry in folders.manifest["runs"]:
                if entry["status"] == "pending":
                    entry["status"] = "interrupted"
            folders.save_manifest()
    finally:
        backend.close()
    outcome.seconds = time.monotonic() - started
    return outcome


def _where(backend: Any) -> str:
    kind = {"serial": "this process", "processes": "local worker processes", "ray": "Ray"}[backend.kind]
    return f"{kind} ({backend.workers} worker(s) x {backend.threads} torch thread(s))"


def _record(folders: RunFolders, plan: FanoutPlan, result: TaskResult, outcome: FanoutOutcome, err: TextIO) -> None:
    """Write a finished run's files, update the manifest, say it on stderr."""
    entry = folders.run_entry(result.index)
    written = folders.write(result)
    outcome.results[result.index] = result
    outcome.written[result.index] = written
    base = folders.output_dir
    entry["files"] = [os.path.relpath(p, base).replace(os.sep, "/") if p.startswith(base) else p for p in written]
    entry["texts"] = [f"{result.name}/{path}" for _, path, _ in result.texts]
    entry["seconds"] = round(result.seconds, 3)
    entry["status"] = "done" if result.ok else ("interrupted" if result.interrupted else "failed")
    if result.skipped:
        entry["skipped_outputs"] = result.skipped
    if result.error:
        entry["error"] = result.error
    folders.save_manifest()
    point = plan.points[result.index - 1]
    state = {"done": "done", "failed": "FAILED", "interrupted": "interrupted"}[entry["status"]]
    err.write(f"[{len(outcome.results)}/{len(plan.tasks)}] {result.name} {state} in {result.seconds:.1f}s "
              f"({_values_text(point) or 'no values'}): {len(written)} file(s)"
              f"{': ' + result.error if result.error else ''}\n")
