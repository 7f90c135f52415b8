"""Check an API-format graph before anything runs, the way ComfyUI's validate_prompt does.

Every problem is collected (not only the first) so a user can fix a workflow in one
pass; each carries the node id, class_type, input name and ComfyUI's error type.
Like ComfyUI, validity is decided per output node: `validate_outputs` tells which
outputs can run and which must be skipped; `validate_prompt` is the strict form.
The graph helpers (links, output nodes, dependency order) come from `graph`, which the
executor shares, so both agree on what "needed" means.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

from .graph import execution_order, id_sort_key, input_info, is_link, node_title, output_nodes, types_match
from .node_spec import missing_modules, runnable

__all__ = [
    "Problem",
    "ValidationError",
    "PromptValidation",
    "validate_outputs",
    "validate_prompt",
]


@dataclass(frozen=True)
class Problem:
    """One validation problem; node_id / input_name are None for whole-graph problems."""

    node_id: Optional[str]
    class_type: Optional[str]
    input_name: Optional[str]
    message: str
    type: str = "invalid_input"
    title: Optional[str] = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = "workflow"
        if self.node_id is not None:
            where = f"node {self.node_id}"
            label = self.class_type or "?"
            if self.title and self.title != self.class_type:
                label += f" {self.title!r}"
            where += f" ({label})"
        if self.input_name:
            where += f", input {self.input_name!r}"
        return f"{where}: {self.message}"


class ValidationError(ValueError):
    """The graph is invalid; `problems` lists every problem found.

    `dependent_outputs` maps a node id to the output nodes its problems invalidate
    (ComfyUI's node_errors[...]["dependent_outputs"]); it is empty for whole-graph problems.
    """

    def __init__(self, problems: list, dependent_outputs: Optional[Mapping] = None):
        self.problems = list(problems)
        self.dependent_outputs = {nid: list(outs) for nid, outs in (dependent_outputs or {}).items()}
        super().__init__(self._render())

    @property
    def errors(self) -> list:
        return [p.as_dict() for p in self.problems]

    def node_errors(self) -> dict:
        """ComfyUI-shaped {node_id: {"errors", "dependent_outputs", "class_type"}} (whole-graph problems left out)."""
        out: dict = {}
        for p in self.problems:
            if p.node_id is None:
                continue
            entry = out.setdefault(p.node_id, {"errors": [],
                                               "dependent_outputs": list(self.dependent_outputs.get(p.node_id, [])),
                                               "class_type": p.class_type})
            entry["errors"].append({"type": p.type, "message": p.message, "details": p.input_name or "",
                                    "extra_info": {"input_name": p.input_name}})
        return out

    def _render(self) -> str:
        n = len(self.problems)
        lines = [f"workflow validation failed ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


# ---------------------------------------------------------------- per-node checks

_COERCE = {"INT": int, "FLOAT": float, "STRING": str}


def _coerce(typ: Any, value: Any) -> Any:
    if typ == "BOOLEAN":
        # ComfyUI does bool(value), turning the string "false" into True: refuse non-booleans.
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if typ in ("INT", "FLOAT") and isinstance(value, str) and not value.strip():
        raise ValueError("empty string")
    fn = _COERCE.get(typ) if isinstance(typ, str) else None
    if fn is None:
        return value
    result = fn(value)
    if typ == "FLOAT" and not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _validate_function(node_class: Any) -> tuple:
    fn = getattr(node_class, "VALIDATE_INPUTS", None)
    if fn is None:
        return None, [], False
    spec = inspect.getfullargspec(fn)
    args = [a for a in spec.args if a not in ("self", "cls", "s")]
    return fn, args, spec.varkw is not None


class _NodeChecker:
    """Validates the inputs of one node; appends Problems to a shared list."""

    def __init__(self, prompt: Mapping, node_classes: Mapping, problems: list, extra: Mapping):
        self.prompt, self.node_classes, self.problems, self.extra = prompt, node_classes, problems, extra

    def check(self, nid: str) -> dict:
        node = self.prompt[nid]
        class_type = node["class_type"]
        node_class = self.node_classes[class_type]
        title = node_title(node)
        inputs = dict(node.get("inputs") or {})

        def report(name, message, kind):
            self.problems.append(Problem(nid, class_type, name, message, kind, title))

        try:
            types = node_class.INPUT_TYPES() or {}
        except Exception as exc:
            report(None, f"INPUT_TYPES() raised {type(exc).__name__}: {exc}", "exception_during_validation")
            return inputs
        vfn, vargs, vkwargs = _validate_function(node_class)
        received_types = {}
        for category in ("required", "optional"):
            for name in (types.get(category) or {}):
                typ, _, opts = input_info(types, name)
                if name not in inputs:
                    if category == "required":
                        report(name, "required input is missing", "required_input_missing")
                    continue
                value = inputs[name]
                if isinstance(value, list):
                    received = self._check_link(name, value, typ, "input_types" in vargs, report)
                    if received is not None:
                        received_types[name] = received
                    continue
                if isinstance(value, Mapping) and "__value__" in value:
                    value = value["__value__"]
                try:
                    value = _coerce(typ, value)
                except (TypeError, ValueError, OverflowError) as exc:
                    report(name, f"cannot convert {value!r} to {typ}: {exc}", "invalid_input_type")
                    continue
                inputs[name] = value
                if name in vargs or vkwargs:
                    continue
                self._check_range_and_choice(name, value, typ, opts, report)
        if vfn is not None:
            self._custom(nid, node_class, types, inputs, vfn, vargs, vkwargs, received_types, report)
        return inputs

    def _check_link(self, name, value, typ, skip_types, report):
        if not is_link(value):
            report(name, f"bad link {value!r}: must be [\"<node id>\", <output index>]", "bad_linked_input")
            return None
        src, slot = value
        if src not in self.prompt:
            report(name, f"linked to node {src}, which does not exist", "bad_linked_input")
            return None
        src_class = self.node_classes.get(self.prompt[src].get("class_type"))
        if src_class is None:
            return None  # the unknown type is reported on its own
        returns = tuple(getattr(src_class, "RETURN_TYPES", ()))
        if (isinstance(slot, float) and not slot.is_integer()) or not 0 <= int(slot) < len(returns):
            report(name, f"linked to output {slot} of node {src} ({self.prompt[src]['class_type']}), "
                         f"which has {len(returns)} output(s)", "bad_linked_input")
            return None
        received = returns[int(slot)]
        if not skip_types and not types_match(received, typ):
            report(name, f"type mismatch: node {src} output {int(slot)} gives {received}, "
                         f"the input expects {typ}", "return_type_mismatch")
        return received

    @staticmethod
    def _check_range_and_choice(name, value, typ, opts, report):
        try:
            too_small = "min" in opts and value < opts["min"]
            too_big = "max" in opts and value > opts["max"]
        except TypeError:
            too_small = too_big = False
        if too_small:
            report(name, f"value {value} is smaller than the minimum {opts['min']}", "value_smaller_than_min")
        elif too_big:
            report(name, f"value {value} is bigger than the maximum {opts['max']}", "value_bigger_than_max")
        elif isinstance(typ, (list, tuple)) and value not in typ:
            choices = list(typ) if len(typ) <= 20 else f"a list of {len(typ)} choices"
            report(name, f"value {value!r} is not one of {choices}", "value_not_in_list")

    def _custom(self, nid, node_class, types, inputs, vfn, vargs, vkwargs, received_types, report):
        kwargs = {}
        for name, value in inputs.items():
            _, category, _ = input_info(types, name)
            if category is None or not (vkwargs or name in vargs):
                continue
            kwargs[name] = None if isinstance(value, list) else value
        for name, kind in (types.get("hidden") or {}).items():
            if vkwargs or name in vargs:
                kwargs[name] = {"PROMPT": dict(self.prompt), "UNIQUE_ID": nid,
                                "EXTRA_PNGINFO": self.extra.get("extra_pnginfo")}.get(kind)
        if "input_types" in vargs:
            kwargs["input_types"] = received_types
        named = [n for n in vargs if n in kwargs and n != "input_types"] or list(kwargs)
        target = named[0] if len(named) == 1 else None
        try:
            result = vfn(**kwargs)
        except Exception as exc:
            report(target, f"VALIDATE_INPUTS raised {type(exc).__name__}: {exc}", "exception_during_validation")
            return
        if result is not True:
            message = str(result) if result is not False else "custom validation failed"
            report(target, message, "custom_validation_failed")


def _check_dependencies(prompt: Mapping, nid: str, node_classes: Mapping, problems: list) -> None:
    """A node whose declared Python modules are missing cannot run: say what to install before anything runs."""
    class_type = prompt[nid]["class_type"]
    for module, hint in missing_modules(node_classes[class_type]).items():
        problems.append(Problem(nid, class_type, None, f"needs the Python module {module!r}, which is not "
                                f"installed: {hint}", "missing_dependency", node_title(prompt[nid])))


@dataclass(frozen=True)
class PromptValidation:
    """What `validate_outputs` found: the outputs that can run, and the problems of the others."""

    prompt: dict             # copy of the graph; constants coerced in every node an output needs
    good_outputs: list       # output node ids whose whole upstream graph is valid
    failed_outputs: list     # output node ids that must be skipped
    problems: list           # every Problem found (all of them belong to failed outputs)
    dependent_outputs: dict  # node id -> failed outputs its problems invalidate

    def error(self) -> Optional[ValidationError]:
        """The problems as a ValidationError, or None when every output is valid."""
        return ValidationError(self.problems, self.dependent_outputs) if self.problems else None


def validate_outputs(prompt: Mapping, node_classes: Mapping, extra: Optional[Mapping] = None) -> PromptValidation:
    """Validate an API graph per output node, as ComfyUI's validate_prompt does.

    ComfyUI runs the outputs whose upstream graph is valid ("good outputs") and ignores
    the others, reporting their problems; only when no output is valid is the prompt
    refused. So this raises ValidationError (with every problem found) only for
    whole-graph problems (no nodes, a node that is not an object, has no class_type, an
    unknown class_type or non-object inputs, no output node) or when no output is valid.

    Checks, for every node an output needs: required inputs, links (shape, target, slot,
    type), INT/FLOAT/STRING/BOOLEAN coercion, min/max, combo choices, VALIDATE_INPUTS,
    the Python modules the node declares it needs, and dependency cycles. An output is good
    when none of its upstream nodes (itself included) has a problem or lies on a cycle.
    """
    extra = extra or {}
    node_classes = runnable(node_classes)
    problems: list = []
    if not isinstance(prompt, Mapping) or not prompt:
        raise ValidationError([Problem(None, None, None, "the workflow has no nodes", "invalid_prompt")])
    unknown = False  # a whole-graph problem: ComfyUI refuses the prompt however many outputs are valid
    for nid in sorted(prompt, key=id_sort_key):
        node = prompt[nid]
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            problems.append(Problem(nid, None, None, "node is not an object", "invalid_prompt"))
        elif not class_type:
            problems.append(Problem(nid, None, None, "node has no class_type", "invalid_prompt"))
            unknown = True
        elif class_type not in node_classes:
            problems.append(Problem(nid, class_type, None, f"unknown node type {class_type!r} "
                                    "(not installed or misspelled)", "invalid_prompt", node_title(node)))
            unknown = True
        elif not isinstance(node.get("inputs", {}), Mapping):
            problems.append(Problem(nid, class_type, None, "'inputs' must be an object", "invalid_prompt"))
            unknown = True
    if any(not isinstance(node, Mapping) for node in prompt.values()):
        raise ValidationError(problems)
    outputs = output_nodes(prompt, node_classes)
    if not outputs:
        if not unknown:  # an unknown node might have been the output: its problem says enough
            problems.append(Problem(None, None, None, "the workflow has no output node "
                                    "(e.g. SaveImage or PreviewImage)", "prompt_no_outputs"))
        raise ValidationError(problems)
    order, cycles = execution_order(prompt, outputs)
    on_cycle = set()
    for cycle in cycles:
        nid = cycle[0]
        on_cycle.update(cycle)
        problems.append(Problem(nid, prompt[nid].get("class_type"), None, "dependency cycle: " + " -> ".join(cycle),
                                "dependency_cycle", node_title(prompt[nid])))
    checker = _NodeChecker(prompt, node_classes, problems, extra)
    result = {nid: dict(node) for nid, node in prompt.items()}
    for nid in order:
        if prompt[nid].get("class_type") in node_classes and isinstance(prompt[nid].get("inputs", {}), Mapping):
            result[nid]["inputs"] = checker.check(nid)
            _check_dependencies(prompt, nid, node_classes, problems)
    with_problems = {p.node_id for p in problems if p.node_id is not None}
    good, failed, dependent = [], [], {}
    for out in outputs:
        upstream, _ = execution_order(prompt, [out])
        bad = [nid for nid in upstream if nid in with_problems or nid in on_cycle]
        if not bad:
            good.append(out)
            continue
        failed.append(out)
        for nid in bad:
            if nid in with_problems:  # nodes only downstream of a problem get no entry, as in ComfyUI
                dependent.setdefault(nid, []).append(out)
    if unknown or not good:
        raise ValidationError(problems, dependent)
    return PromptValidation(result, good, failed, problems, dependent)


def validate_prompt(prompt: Mapping, node_classes: Mapping, extra: Optional[Mapping] = None) -> dict:
    """Validate an API graph; return a copy with constants coerced, or raise ValidationError.

    Strict: raises on any problem, even when some outputs are valid (use
    `validate_outputs` to run the valid outputs anyway, as ComfyUI does). Checks
    unknown node types (all of them; the other nodes are still checked), that an output
    node exists, cycles, and for every node an output needs: required inputs, links
    (shape, target, slot, type), INT/FLOAT/STRING/BOOLEAN coercion, min/max, combo
    choices, VALIDATE_INPUTS.
    """
    checked = validate_outputs(prompt, node_classes, extra)
    if checked.problems:
        raise checked.error()
    return checked.prompt
