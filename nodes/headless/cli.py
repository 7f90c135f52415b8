"""`nst-run`: run a saved ComfyUI workflow (UI or API JSON, or a ComfyUI PNG) from the command line.

The same JSON that runs inside ComfyUI runs here, with headless stand-ins for the core image
nodes; this module only parses arguments, applies --set overrides, shows progress on stderr,
prints what the run produced and turns every failure into a readable message (a traceback only
with --verbose) and an exit code.

Exit codes: 0 success; 1 the workflow could not be read or validated (nothing was run) or a
node failed; 2 bad usage; 3 the workflow ran, but some output nodes failed validation and were
skipped (as ComfyUI does; their problems are printed on stderr); 130 interrupted.
With --sweep / --inputs / --workers / --ray the runs fan out (fanout.py): nothing runs unless every
run validates (1); 1 also when a run failed; 2 for options that cannot work (ray missing, output
folder taken); 130 interrupted (the finished runs are kept).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Iterator, Mapping, Optional, TextIO

from .core_nodes import CORE_NODE_CLASS_MAPPINGS, CORE_NODE_DISPLAY_NAME_MAPPINGS
from .executor import ExecutionError, Executor
from .format import WorkflowFormatError
from .graph import node_label, node_title
from .node_spec import runnable
from .overrides import OverrideError, apply_overrides, parse_override
from .progress import NodeProgress
from .runtime import Interrupted
from .text_outputs import collect_texts, save_texts
from .fanout import FanoutOptions, FanoutUsageError, plan_fanout, run_fanout
from .ray_backend import LOCAL, RayMissing, import_ray
from .run_folders import OutputFolderTaken
from .validation import ValidationError

__all__ = ["main", "build_registry", "apply_overrides", "parse_override", "OverrideError", "PACK_PACKAGE"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# The node pack whose NODES the runner is handed: the package above this one (comfyui_nst.nodes).
# Imported by name, so the runner itself never imports the engine.
PACK_PACKAGE = (__package__ or "").rpartition(".")[0] or "comfyui_nst.nodes"


def build_registry(package: str = PACK_PACKAGE) -> tuple:
    """(node classes, display names): the pack's nodes (NODES: V3-shaped nodes with a NodeSpec; a V1
    pack's NODE_CLASS_MAPPINGS works too) plus the core stand-ins, as the executor runs them.

    Core names win, as in ComfyUI (which drops pack entries named like core nodes).
    """
    pack = importlib.import_module(package)
    classes = dict(getattr(pack, "NODE_CLASS_MAPPINGS", None) or {})
    names = dict(getattr(pack, "NODE_DISPLAY_NAME_MAPPINGS", None) or {})
    for node in getattr(pack, "NODES", None) or ():
        spec = node.spec()
        classes[spec.node_id], names[spec.node_id] = node, spec.display_name
    classes.update(CORE_NODE_CLASS_MAPPINGS)
    names.update(CORE_NODE_DISPLAY_NAME_MAPPINGS)
    return runnable(classes), names


def _own_process(package: str = PACK_PACKAGE) -> None:
    """nst-run owns its process (a host such as ComfyUI never runs this): the pack may tune it through its
    optional `own_process()` (the NST pack: malloc hands freed activations back, so RSS follows the live
    tensors a memory budget counts)."""
    hook = getattr(importlib.import_module(package), "own_process", None)
    if callable(hook):
        hook()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nst-run",
        description="Run a saved ComfyUI workflow (UI or API format JSON, or a ComfyUI PNG) without ComfyUI.",
        epilog="Output: the paths of the files written are printed on stdout, one per line; then the text "
               "that output nodes show (Preview Any, reports), each under a '== node ...: FILE ==' header. "
               "Each text is also saved as <node title>_NNNNN_.txt in the output folder, beside the images. "
               "Progress, warnings and errors go to stderr. "
               "Like ComfyUI, output nodes that fail validation are skipped and the other outputs run. "
               "Exit codes: 0 success; 1 invalid workflow (nothing run) or a node failed; 2 bad usage; "
               "3 ran, but some outputs failed validation and were skipped; 130 interrupted.")
    p.add_argument("workflow", nargs="?",
                   help="the workflow: a .json saved by the ComfyUI editor or exported in API format, "
                        "or a PNG that ComfyUI saved")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override an input; NODE is a node id or title, VALUE is JSON if it parses, else a string "
                        "(repeatable)")
    p.add_argument("--input-dir", default="input", help="folder LoadImage reads from (default: ./input)")
    p.add_argument("--output-dir", default="output",
                   help="folder for SaveImage's images and the .txt text outputs (default: ./output)")
    previews = p.add_mutually_exclusive_group()
    previews.add_argument("--save-previews", action="store_true",
                          help="keep PreviewImage pictures in the output folder (default: they live in a "
                               "temp folder of the run, removed when it ends)")
    previews.add_argument("--temp-dir", default=None, metavar="DIR",
                          help="keep PreviewImage pictures in DIR instead")
    p.add_argument("--device", default=None,
                   help="torch device for the nodes, e.g. cpu, cuda, cuda:1, mps; sets NST_DEVICE "
                        "(default: cuda if available, else cpu)")
    p.add_argument("--list-nodes", action="store_true", help="list the available node types and exit")
    p.add_argument("--print-api", action="store_true", help="print the workflow in API format (after --set) and exit")
    p.add_argument("--validate", action="store_true",
                   help="only validate the workflow (exit 1 on any problem, even one a run would skip)")
    _fanout_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the Python traceback of an error (default: a message only)")
    return p


def _fanout_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "many runs (fan-out)",
        "Each run's files go to their own folder of the output folder (run_0001/, run_0002/, ...), and "
        "manifest.json there lists every run with the values it used (also embedded in each PNG, as 'fanout'). "
        "The output folder must not hold an earlier fan-out. Runs are byte-identical whichever way they ran "
        "at the same --threads.")
    group.add_argument("--sweep", dest="sweeps", action="append", default=[], metavar="NODE.INPUT=V1,V2,...",
                       help="run once per value (repeatable: every combination); NODE is a node id or title as "
                            "in --set; values are JSON if they parse; values holding commas: NODE.INPUT='[\"a,b\", \"c\"]'")
    group.add_argument("--inputs", metavar="DIR",
                       help="run once per image file in DIR, fed to the workflow's LoadImage node")
    group.add_argument("--inputs-node", metavar="NODE",
                       help="the LoadImage node (id or title) that --inputs feeds, when the workflow has several")
    group.add_argument("--workers", type=_positive_int, metavar="N",
                       help="worker processes on this machine (with --ray: actors on the cluster; default there: "
                            "one per CPU of the cluster, or per GPU with --device cuda)")
    group.add_argument("--ray", nargs="?", const=LOCAL, metavar="ADDRESS",
                       help="run on a Ray cluster (ray start --head gives the ADDRESS, e.g. 10.0.0.5:6379, or "
                            "'auto'); without ADDRESS a local cluster is started and stopped. Needs the ray "
                            "extra: pip install 'comfyui-nst[ray]'. Put the workflow before --ray")
    group.add_argument("--threads", type=_positive_int, metavar="N",
                       help="torch threads per worker (default: the cores shared out among the local workers; "
                            "1 per Ray actor); images are byte-identical only at equal counts")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _list_nodes(classes: Mapping, names: Mapping, out: TextIO) -> None:
    for name in sorted(classes):
        node_class = classes[name]
        try:
            types = node_class.INPUT_TYPES()
            inputs = list(types.get("required") or {}) + [f"[{n}]" for n in (types.get("optional") or {})]
        except Exception as exc:  # listing must not die on one broken class
            inputs = [f"<INPUT_TYPES failed: {exc}>"]
        returns = ", ".join(map(str, getattr(node_class, "RETURN_TYPES", ()))) or "-"
        flag = " (output)" if getattr(node_class, "OUTPUT_NODE", False) else ""
        display = f" \"{names[name]}\"" if name in names and names[name] != name else ""
        out.write(f"{name}{display}{flag}: ({', '.join(inputs)}) -> {returns}\n")


def _show_path(path: str) -> str:
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C, so files being written are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt("terminated")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[list] = None) -> int:
    args = _parser().parse_args(argv)
    err = sys.stderr
    _own_process()
    if args.device:
        os.environ["NST_DEVICE"] = args.device
    if not args.workflow and args.ray not in (None, LOCAL) and os.path.isfile(args.ray):
        args.workflow, args.ray = args.ray, LOCAL   # `nst-run --ray wf.json`: the file is the workflow
    if not args.workflow and not args.list_nodes:
        _parser().print_usage(err)
        err.write("nst-run: error: a workflow file is required\n")
        return EXIT_USAGE
    bar = None if args.quiet else NodeProgress(err)
    try:
        with _sigterm_interrupts():
            return _main(args, bar, err)
    except (FanoutUsageError, RayMissing, OutputFolderTaken) as exc:
        _traceback_if(args, err)
        err.write(f"nst-run: {exc}\n")
        return EXIT_USAGE
    except (WorkflowFormatError, OverrideError) as exc:
        _traceback_if(args, err)
        err.write(f"nst-run: {exc}\n")
    except ValidationError as exc:
        err.write(f"nst-run: {exc}\nnothing was run.\n")
    except ExecutionError as exc:
        _close(bar)
        if args.verbose and exc.traceback:
            err.write(exc.traceback)
        err.write(f"nst-run: {exc}\n")
    except (Interrupted, KeyboardInterrupt) as exc:
        _close(bar)
        err.write(f"nst-run: interrupted{': ' + str(exc) if str(exc) else ''}\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        _close(bar)
        _traceback_if(args, err)
        err.write(f"nst-run: {exc}\n")
    except Exception as exc:   # noqa: BLE001 - the last word: a message, never a bare traceback
        _close(bar)
        _traceback_if(args, err)
        err.write(f"nst-run: unexpected error: {type(exc).__name__}: {exc}\n"
                  "This is a bug in nst-run or a node; run again with --verbose to see where it happened.\n")
    return EXIT_FAILED


def _close(bar: Optional[NodeProgress]) -> None:
    if bar is not None:
        bar.close()


def _traceback_if(args: argparse.Namespace, err: TextIO) -> None:
    if args.verbose:
        traceback.print_exc(file=err)


def _main(args: argparse.Namespace, bar: Optional[NodeProgress], err: TextIO) -> int:
    try:
        classes, names = build_registry()
    except ImportError as exc:
        raise OSError(f"could not load the node pack {PACK_PACKAGE}: {exc}") from exc
    if args.list_nodes:
        try:
            _list_nodes(classes, names, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `nst-run --list-nodes | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    temp_dir = args.output_dir if args.save_previews else args.temp_dir
    executor = Executor(classes, input_dir=args.input_dir, output_dir=args.output_dir, temp_dir=temp_dir,
                        display_names=names, progress=bar)
    started = time.monotonic()
    workflow = executor.load(args.workflow)
    apply_overrides(workflow.prompt, args.overrides, classes)
    for warning in workflow.warnings:
        err.write(f"warning: {warning}\n")
    if _fans_out(args):
        return _main_fanout(args, workflow, classes, names, err)
    if args.print_api:
        json.dump(workflow.prompt, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if args.validate:
        executor.validate(workflow)
        err.write("workflow is valid\n")
        return EXIT_OK
    checked = executor.check(workflow)
    if checked.failed_outputs:   # said before the run, as ComfyUI logs it when the prompt is queued
        err.write(f"nst-run: {checked.error()}\n"
                  f"skipping {_outputs_text(checked.prompt, checked.failed_outputs)}, which failed "
                  "validation; running the other outputs.\n")
    if bar is not None:
        bar.labels = {nid: f"{nid} {node_title(n) or n.get('class_type')}" for nid, n in workflow.prompt.items()}
    result = executor.run(workflow)
    _close(bar)
    texts = collect_texts(result)
    save_texts(result, texts, args.output_dir)
    err.write(f"done in {time.monotonic() - started:.1f}s: {len(result.executed)} node(s) run, "
              f"{len(result.cached)} cached\n")
    _report(result, texts, kept_previews=temp_dir is not None, err=err)
    if result.skipped:
        err.write(f"skipped {_outputs_text(result.prompt, result.skipped)}, which failed validation; "
                  "the other outputs ran.\n")
        return EXIT_SKIPPED
    return EXIT_OK


def _fans_out(args: argparse.Namespace) -> bool:
    return bool(args.sweeps or args.inputs is not None or args.inputs_node or (args.workers or 1) > 1
                or args.ray is not None)


def _main_fanout(args: argparse.Namespace, workflow: Any, classes: Mapping, names: Mapping, err: TextIO) -> int:
    """Many runs of the workflow (--sweep, --inputs) here, in worker processes or on Ray."""
    if args.print_api:
        raise FanoutUsageError("--print-api shows one graph; it does not go with --sweep/--inputs/--workers/--ray")
    if args.ray is not None:
        import_ray()   # before any work: say how to install it
    options = FanoutOptions(sweeps=args.sweeps, inputs=args.inputs, inputs_node=args.inputs_node,
                            workers=args.workers, ray=args.ray, threads=args.threads, input_dir=args.input_dir,
                            output_dir=args.output_dir, temp_dir=args.temp_dir, save_previews=args.save_previews,
                            device=args.device)
    plan = plan_fanout(workflow, options, classes, names)
    if args.validate:
        err.write(f"all {len(plan.tasks)} run(s) are valid\n")
        return EXIT_OK
    outcome = run_fanout(plan, options, build_registry, err)
    _report_fanout(plan, outcome, err)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if any(not r.ok for r in outcome.results.values()):
        return EXIT_FAILED
    if any(r.skipped for r in outcome.results.values()):
        return EXIT_SKIPPED
    return EXIT_OK


def _report_fanout(plan: Any, outcome: Any, err: TextIO) -> None:
    """Files on stdout in run order, then the texts; a summary on stderr."""
    out = sys.stdout
    for index in sorted(outcome.written):
        for path in outcome.written[index]:
            out.write(f"{_show_path(path)}\n")
    for index in sorted(outcome.results):
        result = outcome.results[index]
        for label, path, text in result.texts:
            out.write(f"\n== {result.name} node {label}: {result.name}/{path} ==\n{text.rstrip()}\n")
    out.flush()
    failed = [r for r in outcome.results.values() if not r.ok and not r.interrupted]
    done = sum(1 for r in outcome.results.values() if r.ok)
    err.write(f"fan-out: {done} of {len(plan.tasks)} run(s) done, {len(failed)} failed, in "
              f"{outcome.seconds:.1f}s; manifest: {_show_path(outcome.manifest)}\n")
    for result in sorted(failed, key=lambda r: r.index):
        err.write(f"nst-run: {result.name} failed: {result.error}\n")


def _report(result: Any, texts: list, kept_previews: bool, err: TextIO) -> None:
    """Files on stdout (one per line), then the texts; previews and notes on stderr."""
    out = sys.stdout
    for path in result.files + [t.path for t in texts]:
        out.write(f"{_show_path(path)}\n")
    for item in texts:
        out.write(f"\n== node {item.label}: {_show_path(item.path)} ==\n{item.text.rstrip()}\n")
    if kept_previews:
        for path in result.previews:
            err.write(f"preview: {_show_path(path)}\n")
    elif result.previews:
        err.write(f"{len(result.previews)} preview image(s) were not kept (--save-previews keeps them)\n")
    if not result.files and not texts and not (kept_previews and result.previews):
        err.write("no files were written\n")
    out.flush()


def _outputs_text(prompt: dict, output_ids: list) -> str:
    """'output node 13 (ToyShow)' / 'output nodes 8 (SaveImage 'Result'), 13 (ToyShow)'."""
    labels = [node_label(nid, prompt[nid]) for nid in output_ids]
    return f"output node{'s' if len(labels) != 1 else ''} {', '.join(labels)}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
