"""`nst-run`: run a saved ComfyUI workflow (UI or API JSON) from the command line.

The same JSON that runs inside ComfyUI runs here, with headless stand-ins for the
core image nodes; this module only parses arguments, applies --set overrides,
draws progress on stderr and turns every failure into a readable message and a
non-zero exit code.

Exit codes: 0 success; 1 the workflow could not be read or validated (nothing was
run) or a node failed; 2 bad usage; 3 the workflow ran, but some output nodes failed
validation and were skipped (as ComfyUI does; their problems are printed on stderr);
130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, Mapping, Optional, TextIO

from .core_nodes import CORE_NODE_CLASS_MAPPINGS, CORE_NODE_DISPLAY_NAME_MAPPINGS
from .executor import ExecutionError, Executor
from .runtime import Interrupted
from .validation import ValidationError, input_info, node_title
from .workflow_format import WorkflowFormatError

__all__ = ["main", "build_registry", "apply_overrides", "parse_override", "OverrideError", "ProgressPrinter"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class OverrideError(ValueError):
    """A --set argument is malformed or names no node/input."""


def build_registry() -> tuple:
    """(node classes, display names): the pack's nodes plus the core stand-ins.

    Core names win, as in ComfyUI (which drops pack entries named like core nodes).
    """
    package = importlib.import_module(__package__ or "comfyui_nst.nodes")
    classes = dict(getattr(package, "NODE_CLASS_MAPPINGS", None) or {})
    names = dict(getattr(package, "NODE_DISPLAY_NAME_MAPPINGS", None) or {})
    classes.update(CORE_NODE_CLASS_MAPPINGS)
    names.update(CORE_NODE_DISPLAY_NAME_MAPPINGS)
    return classes, names


def parse_override(text: str) -> tuple:
    """"NODE.INPUT=VALUE" -> (node ref, input name, value); VALUE is JSON if it parses."""
    target, sep, raw = text.partition("=")
    ref, dot, name = target.rpartition(".")
    if not sep or not dot or not ref or not name:
        raise OverrideError(f"--set {text!r}: expected NODE.INPUT=VALUE (NODE = node id or title)")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, list) and not (len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)):
        value = {"__value__": value}  # a list value, not a link
    return ref.strip(), name.strip(), value


def _find_node(prompt: Mapping, ref: str) -> str:
    if ref in prompt:
        return ref
    matches = [nid for nid, node in prompt.items() if node_title(node) == ref]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise OverrideError(f"--set: title {ref!r} matches several nodes ({', '.join(matches)}); use the node id")
    known = ", ".join(f"{nid} ({node_title(n) or n.get('class_type')})" for nid, n in prompt.items())
    raise OverrideError(f"--set: no node with id or title {ref!r}; nodes: {known}")


def apply_overrides(prompt: dict, overrides: list, node_classes: Mapping[str, Any]) -> None:
    """Apply "NODE.INPUT=VALUE" strings to an API graph in place."""
    for text in overrides or []:
        ref, name, value = parse_override(text)
        nid = _find_node(prompt, ref)
        node_class = node_classes.get(prompt[nid].get("class_type"))
        if node_class is not None:
            types = node_class.INPUT_TYPES()
            _, category, _ = input_info(types, name)
            if category not in ("required", "optional"):
                valid = list(types.get("required") or {}) + list(types.get("optional") or {})
                raise OverrideError(f"--set: node {nid} ({prompt[nid]['class_type']}) has no input {name!r}; "
                                    f"inputs: {', '.join(valid)}")
        prompt[nid].setdefault("inputs", {})[name] = value


class ProgressPrinter:
    """Progress sink drawing one text bar per node on a stream.

    On a terminal the bar is redrawn in place with '\\r'; otherwise (logs, CI) one
    line is written every 10 %.
    """

    def __init__(self, stream: Optional[TextIO] = None, labels: Optional[Mapping[str, str]] = None,
                 width: int = 30, tty: Optional[bool] = None):
        self.stream = stream or sys.stderr
        self.labels = dict(labels or {})
        self.width = width
        self.tty = self.stream.isatty() if tty is None else tty
        self.node: Optional[str] = None
        self.decile = -1
        self.started = 0.0

    def __call__(self, node_id: Optional[str], value: int, total: int, preview: Any = None) -> None:
        if total <= 0:
            return
        if node_id != self.node:
            self.close()
            self.node, self.decile, self.started = node_id, -1, time.monotonic()
        frac = max(0.0, min(1.0, value / total))
        fill = int(round(frac * self.width))
        elapsed = time.monotonic() - self.started
        label = self.labels.get(node_id, f"node {node_id}")
        line = f"{label} [{'#' * fill}{'.' * (self.width - fill)}] {int(frac * 100):3d}% {value}/{total} {elapsed:.1f}s"
        if self.tty:
            self.stream.write("\r" + line)
            if value >= total:
                self.stream.write("\n")
                self.node = None
        else:
            decile = int(frac * 10)
            if decile > self.decile:
                self.stream.write(line + "\n")
                self.decile = decile
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.node is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.node = None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nst-run",
        description="Run a saved ComfyUI workflow (UI or API format JSON, or a ComfyUI PNG) without ComfyUI.",
        epilog="Like ComfyUI, output nodes that fail validation are skipped and the other outputs run. "
               "Exit codes: 0 success; 1 invalid workflow (nothing run) or a node failed; 2 bad usage; "
               "3 ran, but some outputs failed validation and were skipped; 130 interrupted.")
    p.add_argument("workflow", nargs="?", help="workflow .json (UI or API format) or a PNG saved by ComfyUI")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override an input; NODE is a node id or title, VALUE is JSON if it parses, else a string "
                        "(repeatable)")
    p.add_argument("--input-dir", default="input", help="folder LoadImage reads from (default: ./input)")
    p.add_argument("--output-dir", default="output", help="folder SaveImage writes to (default: ./output)")
    p.add_argument("--temp-dir", default=None, help="folder for PreviewImage files (default: a system temp folder)")
    p.add_argument("--device", default=None, help="torch device for the nodes, e.g. cpu, cuda, cuda:1, mps "
                                                  "(sets NST_DEVICE)")
    p.add_argument("--list-nodes", action="store_true", help="list the available node types and exit")
    p.add_argument("--print-api", action="store_true", help="print the workflow in API format (after --set) and exit")
    p.add_argument("--validate", action="store_true",
                   help="only validate the workflow (exit 1 on any problem, even one a run would skip)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of node errors")
    return p


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


def main(argv: Optional[list] = None) -> int:
    args = _parser().parse_args(argv)
    err = sys.stderr
    if args.device:
        os.environ["NST_DEVICE"] = args.device
    classes, names = build_registry()
    if args.list_nodes:
        try:
            _list_nodes(classes, names, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `nst-run --list-nodes | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if not args.workflow:
        _parser().print_usage(err)
        err.write("nst-run: error: a workflow file is required\n")
        return EXIT_USAGE
    bar = None if args.quiet else ProgressPrinter(err)
    executor = Executor(classes, input_dir=args.input_dir, output_dir=args.output_dir, temp_dir=args.temp_dir,
                        display_names=names, progress=bar)
    started = time.monotonic()
    try:
        workflow = executor.load(args.workflow)
        apply_overrides(workflow.prompt, args.overrides, classes)
        for warning in workflow.warnings:
            err.write(f"warning: {warning}\n")
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
    except (WorkflowFormatError, OverrideError) as exc:
        err.write(f"nst-run: {exc}\n")
        return EXIT_FAILED
    except ValidationError as exc:
        err.write(f"nst-run: {exc}\nnothing was run.\n")
        return EXIT_FAILED
    except ExecutionError as exc:
        if bar is not None:
            bar.close()
        if args.verbose and exc.traceback:
            err.write(exc.traceback)
        err.write(f"nst-run: {exc}\n")
        return EXIT_FAILED
    except (Interrupted, KeyboardInterrupt) as exc:
        if bar is not None:
            bar.close()
        err.write(f"nst-run: interrupted{': ' + str(exc) if str(exc) else ''}\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if args.verbose:
            traceback.print_exc(file=err)
        err.write(f"nst-run: {exc}\n")
        return EXIT_FAILED
    if bar is not None:
        bar.close()
    elapsed = time.monotonic() - started
    err.write(f"done in {elapsed:.1f}s: {len(result.executed)} node(s) run, {len(result.cached)} cached\n")
    for path in result.files:
        sys.stdout.write(f"{_show_path(path)}\n")
    for path in result.previews:
        err.write(f"preview: {path}\n")
    if not result.files and not result.previews:
        err.write("no files were written\n")
    if result.skipped:
        _report_skipped(result, err)
        return EXIT_SKIPPED
    return EXIT_OK


def _outputs_text(prompt: dict, output_ids: list) -> str:
    """'output node 13 (ToyShow)' / 'output nodes 8 (SaveImage 'Result'), 13 (ToyShow)'."""
    labels = []
    for nid in output_ids:
        class_type, title = prompt[nid].get("class_type"), node_title(prompt[nid])
        labels.append(f"{nid} ({class_type}{f' {title!r}' if title and title != class_type else ''})")
    return f"output node{'s' if len(labels) != 1 else ''} {', '.join(labels)}"


def _report_skipped(result: Any, err: TextIO) -> None:
    """After the run: which outputs were skipped (their problems were printed before it)."""
    err.write(f"skipped {_outputs_text(result.prompt, result.skipped)}, which failed validation; "
              "the other outputs ran.\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
