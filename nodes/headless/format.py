"""Load saved workflows and turn the editor's UI format into the API ("prompt") format.

Users save the UI format (nodes, links, widgets_values) but only the API format can
be executed, so this module reproduces what the ComfyUI frontend's `graphToPrompt`
does: widgets mapped by position (skipping the values the frontend never sends),
links override widgets, Reroute / PrimitiveNode / Note resolved, muted nodes
dropped and bypassed nodes rewired by type. It knows nothing of the node pack: the
widget layout is derived from each class's INPUT_TYPES.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from .graph import is_link, spec_type_and_options, types_connectable
from .node_spec import runnable

__all__ = [
    "WorkflowFormatError",
    "Workflow",
    "WidgetSlot",
    "detect_format",
    "load_workflow",
    "read_workflow_file",
    "nesting_depth",
    "ui_to_api",
    "normalize_api",
    "widget_slots",
    "is_widget_input",
    "default_widget_value",
    "MAX_NESTING",
]

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize", "increment-wrap")
SEED_NAMES = ("seed", "noise_seed")
UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
# Frontend-only nodes: never sent to the backend.
VIRTUAL_TYPES = ("Reroute", "PrimitiveNode", "Note", "MarkdownNote")
MODE_MUTED, MODE_BYPASS = 2, 4
# Saved workflows are a few levels deep (widget values hold lists at most); deeper JSON is refused
# before any recursive code (copy, hashing) can reach Python's recursion limit.
MAX_NESTING = 100


class WorkflowFormatError(ValueError):
    """The file is not a workflow this executor can read (or uses unsupported features)."""


@dataclass
class Workflow:
    """A loaded workflow: the API graph to run plus what SaveImage embeds."""

    prompt: dict
    format: str  # "ui" or "api"
    ui: Optional[dict] = None
    extra_pnginfo: Optional[dict] = None
    warnings: list = field(default_factory=list)
    source: Optional[str] = None


@dataclass(frozen=True)
class WidgetSlot:
    """One entry of a node's widgets_values: a real input or a frontend-only phantom."""

    name: str
    kind: str  # "value" | "control" | "filter" | "upload"
    spec: Any = None


# ---------------------------------------------------------------- widget layout

def is_widget_input(spec: Any) -> bool:
    """True if the frontend draws a widget (and stores a widgets_values entry) for this input."""
    typ, opts = spec_type_and_options(spec)
    if opts.get("forceInput"):
        return False
    return isinstance(typ, (list, tuple)) or typ in WIDGET_TYPES


def default_widget_value(spec: Any) -> Any:
    """The value a freshly created frontend widget holds (used when widgets_values is short)."""
    typ, opts = spec_type_and_options(spec)
    if "default" in opts:
        return opts["default"]
    if isinstance(typ, (list, tuple)):
        return typ[0] if typ else None
    if typ == "COMBO":
        options = opts.get("options") or []
        return options[0] if options else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(typ)


def _has_control(name: str, typ: Any, opts: dict) -> bool:
    flag = opts.get("control_after_generate")
    if flag is not None and not isinstance(flag, bool):
        return True  # e.g. a default control mode string
    if flag is not None:
        return flag
    return typ == "INT" and name in SEED_NAMES


def widget_slots(node_class: Any) -> list:
    """Ordered widgets_values layout of a V1 node class, phantom values included."""
    try:
        types = node_class.INPUT_TYPES() or {}
    except Exception as exc:  # a broken class must not break conversion of the others
        raise WorkflowFormatError(f"{getattr(node_class, '__name__', node_class)}.INPUT_TYPES() failed: {exc}")
    slots: list = []
    upload_added = False
    for category in ("required", "optional"):
        for name, spec in (types.get(category) or {}).items():
            if not is_widget_input(spec):
                continue
            typ, opts = spec_type_and_options(spec)
            slots.append(WidgetSlot(name, "value", spec))
            is_combo = isinstance(typ, (list, tuple)) or typ == "COMBO"
            if (typ == "INT" or is_combo) and _has_control(name, typ, opts):
                slots.append(WidgetSlot(name, "control", spec))
                if is_combo:
                    slots.append(WidgetSlot(name, "filter", spec))
        if category == "required" and not upload_added:
            # The frontend appends an "upload" widget to the required inputs of media combos.
            for name, spec in (types.get("required") or {}).items():
                typ, opts = spec_type_and_options(spec)
                is_combo = isinstance(typ, (list, tuple)) or typ == "COMBO"
                if is_combo and any(opts.get(k) for k in UPLOAD_OPTIONS):
                    slots.append(WidgetSlot("upload", "upload", spec))
                    upload_added = True
                    break
    return slots


def _wrap(value: Any) -> Any:
    """The frontend wraps list values so they are not mistaken for links."""
    return {"__value__": value} if isinstance(value, list) else value


def _node_label(node: Mapping) -> str:
    """'node 7 (NST_Optimize)' or 'node 7 (NST_Optimize 'Style transfer')' for messages."""
    kind, title = node.get("type"), node.get("title")
    label = f"{kind} {title!r}" if title and title != kind else f"{kind}"
    return f"node {node.get('id')} ({label})"


def _defaults_note(node: Mapping, took_default: list) -> str:
    names = ", ".join(f"{name!r} = {value!r}" for name, value in took_default)
    return (f"{_node_label(node)}: the file holds no value for {len(took_default)} widget(s), which took their "
            f"defaults: {names}. The node was probably saved before these widgets existed; check the values "
            "(--set NODE.INPUT=VALUE), or open and save the workflow in the editor.")


def _map_widgets(node: dict, node_class: Any, warnings: list) -> dict:
    slots = widget_slots(node_class)
    raw = node.get("widgets_values")
    if isinstance(raw, Mapping):
        result, took_default = {}, []
        for s in slots:
            if s.kind != "value":
                continue
            if s.name not in raw:
                took_default.append((s.name, default_widget_value(s.spec)))
            result[s.name] = _wrap(raw.get(s.name, default_widget_value(s.spec)))
        if took_default:
            warnings.append(_defaults_note(node, took_default))
        return result
    values = list(raw or [])
    slack = len(values) - sum(1 for s in slots if s.kind == "value")
    # Fewer values than the full layout: the node may have been saved before widgets were appended to
    # its class. The frontend then assigns the saved values to its widgets by position (phantoms
    # included) and the new widgets keep their defaults, so a value that looks like a phantom is one.
    # Those defaults are said in a warning: a silently missing value once turned 3 steps into 300.
    short = len(values) < len(slots)
    result, i, control_taken, took_default = {}, 0, False, []
    for slot in slots:
        here = values[i] if i < len(values) else None
        if slot.kind == "value":
            if i < len(values):
                result[slot.name] = _wrap(here)
            else:
                result[slot.name] = _wrap(default_widget_value(slot.spec))
                took_default.append((slot.name, default_widget_value(slot.spec)))
            i += 1
            control_taken = False
            continue
        take = (slack > 0 or short) and i < len(values)
        if slot.kind == "control":
            take = take and (here in CONTROL_VALUES or (isinstance(here, bool) and slack > 0))
            control_taken = take
        elif slot.kind == "filter":
            take = take and control_taken and isinstance(here, str)
        else:  # upload
            take = take and isinstance(here, str)
        if take:
            i += 1
            slack -= 1
    if took_default:
        warnings.append(_defaults_note(node, took_default))
    if i < len(values):
        warnings.append(
            f"node {node.get('id')} ({node.get('type')}): ignored {len(values) - i} extra widget value(s) "
            f"{values[i:]!r}"
        )
    return result


# ---------------------------------------------------------------- shape of an editor file

def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def _is_slot(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_ui_shape(ui: Mapping) -> None:
    """Refuse an editor file whose structure is broken, naming the entry and what is wrong.

    The converter below may then index freely: without this a bad entry surfaced as a bare
    ValueError / AttributeError from deep inside the conversion.
    """
    for key in ("definitions", "extra"):
        if ui.get(key) is not None and not isinstance(ui.get(key), Mapping):
            raise WorkflowFormatError(f"the workflow's {key!r} must be an object, not {type(ui[key]).__name__}")
    links = ui.get("links")
    if links is not None and not isinstance(links, list):
        raise WorkflowFormatError(f"the workflow's 'links' must be a list, not {type(links).__name__}")
    for index, node in enumerate(ui["nodes"]):
        if not isinstance(node, Mapping):
            raise WorkflowFormatError(f"entry {index} of 'nodes' is not an object: {node!r:.80}")
        if not _is_id(node.get("id")):
            raise WorkflowFormatError(f"entry {index} of 'nodes' has no valid 'id' (got {node.get('id')!r:.40})")
        where = f"node {node['id']}"
        if not isinstance(node.get("type"), str) or not node.get("type"):
            raise WorkflowFormatError(f"{where} has no type (a node class name)")
        for key in ("inputs", "outputs"):
            entries = node.get(key)
            if entries is None:
                continue
            if not isinstance(entries, list):
                raise WorkflowFormatError(f"{where} ({node['type']}): {key!r} must be a list, "
                                          f"not {type(entries).__name__}")
            for slot, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    raise WorkflowFormatError(f"{where} ({node['type']}): {key} entry {slot} is not an object: "
                                              f"{entry!r:.80}")
                if key == "inputs" and not isinstance(entry.get("name"), str):
                    raise WorkflowFormatError(f"{where} ({node['type']}): input {slot} has no name")
                link = entry.get("link") if key == "inputs" else None
                if link is not None and not _is_id(link):
                    raise WorkflowFormatError(f"{where} ({node['type']}): input {entry.get('name', slot)!r} has "
                                              f"a malformed link {link!r:.40} (a link id or null)")
        values = node.get("widgets_values")
        if values is not None and not isinstance(values, (list, Mapping)):
            raise WorkflowFormatError(f"{where} ({node['type']}): 'widgets_values' must be a list, "
                                      f"not {type(values).__name__}")


def _links_table(raw_links: Iterable) -> dict:
    """{link id: (origin id, origin slot, target id, target slot, type)} of the editor's links."""
    table = {}
    for index, link in enumerate(raw_links or []):
        if link is None:
            continue
        if isinstance(link, Mapping):
            entry = (link.get("id"), link.get("origin_id"), link.get("origin_slot"), link.get("target_id"),
                     link.get("target_slot"), link.get("type"))
        elif isinstance(link, (list, tuple)) and len(link) >= 5:
            entry = (link[0], link[1], link[2], link[3], link[4], link[5] if len(link) > 5 else None)
        else:
            raise WorkflowFormatError(f"link entry {index} is malformed: {link!r:.80} (expected "
                                      "[id, origin node, origin slot, target node, target slot, type])")
        lid, origin, origin_slot, target = entry[0], entry[1], entry[2] or 0, entry[3]
        for name, ok in (("id", _is_id(lid)), ("origin node", _is_id(origin)),
                         ("origin slot", _is_slot(origin_slot)), ("target node", _is_id(target))):
            if not ok:
                raise WorkflowFormatError(f"link entry {index} is malformed: its {name} is not valid in "
                                          f"{link!r:.80}")
        table[lid] = (str(origin), origin_slot, str(target), entry[4], entry[5])
    return table


# ---------------------------------------------------------------- link resolution

class _Resolver:
    """Follows a link back through Reroutes and bypassed nodes to its real origin (ExecutableNodeDTO).

    A loop, not recursion: a chain of a thousand Reroutes must not reach the recursion limit.
    """

    def __init__(self, nodes: dict, links: dict, warnings: list):
        self.nodes, self.links, self.warnings = nodes, links, warnings

    def resolve_input(self, node_id: str, slot: int):
        """("link", origin id, slot), ("value", v) from a PrimitiveNode, or None (nothing connected)."""
        visited: set = set()
        direct = True
        while True:
            key = (node_id, "I", slot)
            if key in visited:
                raise WorkflowFormatError(f"circular link through node {node_id} (reroute/bypass loop)")
            visited.add(key)
            inputs = self.nodes[node_id].get("inputs") or []
            if slot >= len(inputs):
                return None
            link_id = inputs[slot].get("link")
            if link_id is None:
                return None
            link = self.links.get(link_id)
            if link is None:
                self.warnings.append(f"node {node_id}: input {inputs[slot].get('name')!r} refers to missing "
                                     f"link {link_id}")
                return None
            origin, origin_slot, want_type = link[0], link[1], inputs[slot].get("type")
            if origin not in self.nodes:
                return ("link", origin, origin_slot)  # left for validation to report
            # the origin's output
            key = (origin, "O", origin_slot)
            if key in visited:
                raise WorkflowFormatError(f"circular link through node {origin} (reroute/bypass loop)")
            visited.add(key)
            node = self.nodes[origin]
            if node.get("mode") == MODE_BYPASS:
                index = self._bypass_slot(node, origin_slot, want_type)
                if index < 0:
                    return None
                node_id, slot, direct = origin, index, False
                continue
            kind = node.get("type")
            if kind == "PrimitiveNode":
                # Its value reaches only the widgets it is linked to directly; through a Reroute
                # frontend 1.27.10 keeps the target's stored widget value (checked in a real browser).
                values = node.get("widgets_values")
                if direct and isinstance(values, list) and values:
                    return ("value", values[0])
                return None
            if kind in VIRTUAL_TYPES:
                if origin_slot < len(node.get("inputs") or []):
                    node_id, slot, direct = origin, origin_slot, False
                    continue
                return None
            return ("link", origin, origin_slot)

    @staticmethod
    def _bypass_slot(node: dict, slot: int, want_type: Any) -> int:
        inputs = node.get("inputs") or []
        outputs = node.get("outputs") or []
        if not inputs:
            return -1
        out_type = outputs[slot].get("type") if slot < len(outputs) else None
        if want_type in ("*", ""):
            return slot if len(inputs) > slot else 0
        if slot < len(inputs):
            t = inputs[slot].get("type")
            if types_connectable(t, out_type) and types_connectable(t, want_type):
                return slot
        for i, inp in enumerate(inputs):
            if inp.get("type") == want_type:
                return i
        for i, inp in enumerate(inputs):
            t = inp.get("type")
            if types_connectable(t, out_type) and types_connectable(t, want_type):
                return i
        return -1


# ---------------------------------------------------------------- conversion

def _reject_unsupported(ui: dict) -> None:
    subgraphs = (ui.get("definitions") or {}).get("subgraphs")
    subgraph_ids = {str(s.get("id")) for s in (subgraphs if isinstance(subgraphs, list) else [])
                    if isinstance(s, Mapping)}
    groups = (ui.get("extra") or {}).get("groupNodes")
    group_nodes = set(groups.keys()) if isinstance(groups, Mapping) else set()
    problems = []
    for node in ui.get("nodes") or []:
        kind = str(node.get("type"))
        if kind in subgraph_ids:
            problems.append(f"node {node.get('id')} is a subgraph ({kind})")
        elif kind.startswith(("workflow>", "workflow/")) or kind in group_nodes:
            problems.append(f"node {node.get('id')} is a group node ({kind})")
    if problems:
        raise WorkflowFormatError(
            "subgraphs and group nodes cannot be run by the headless executor: "
            + "; ".join(problems)
            + ". Unpack them in the editor (right-click > Unpack Subgraph / Convert to nodes) and save again."
        )


def ui_to_api(ui: dict, node_classes: Mapping[str, Any], display_names: Optional[Mapping[str, str]] = None,
              warnings: Optional[list] = None) -> dict:
    """Convert a UI-format workflow to the API format, as the frontend's graphToPrompt does.

    Nodes of unknown types keep only their links (validation reports them). A structurally
    broken file raises WorkflowFormatError naming the entry.
    """
    warnings = [] if warnings is None else warnings
    display_names = display_names or {}
    if not isinstance(ui.get("nodes"), list):
        raise WorkflowFormatError("UI workflow has no 'nodes' list")
    _check_ui_shape(ui)
    _reject_unsupported(ui)
    nodes = {}
    for node in ui["nodes"]:
        nodes[str(node["id"])] = node
    resolver = _Resolver(nodes, _links_table(ui.get("links")), warnings)
    out: dict = {}
    for node_id, node in nodes.items():
        kind = node["type"]
        if kind in VIRTUAL_TYPES or node.get("mode") in (MODE_MUTED, MODE_BYPASS):
            continue
        node_class = node_classes.get(kind)
        inputs = _map_widgets(node, node_class, warnings) if node_class is not None else {}
        for slot, inp in enumerate(node.get("inputs") or []):
            if inp.get("link") is None:
                continue
            resolved = resolver.resolve_input(node_id, slot)
            if resolved is None:
                continue
            if resolved[0] == "value":
                inputs[inp.get("name")] = _wrap(resolved[1])
            else:
                inputs[inp.get("name")] = [resolved[1], resolved[2]]
        title = node.get("title") or display_names.get(kind) or kind
        out[node_id] = {"inputs": inputs, "class_type": kind, "_meta": {"title": title}}
    # Links to nodes that were dropped (muted, virtual) disappear, as in the frontend.
    for entry in out.values():
        for name, value in list(entry["inputs"].items()):
            if is_link(value) and value[0] not in out and value[0] in nodes:
                del entry["inputs"][name]
    return out


def normalize_api(prompt: Mapping) -> dict:
    """Copy of an API graph with string node ids (also inside links)."""
    out = {}
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping):
            raise WorkflowFormatError(f"node {node_id!r} is not an object")
        node = copy.deepcopy(dict(node))
        inputs = node.get("inputs")
        if isinstance(inputs, Mapping):
            fixed = {}
            for name, value in inputs.items():
                if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                        and not isinstance(value[0], bool) and isinstance(value[1], int)):
                    value = [str(value[0]), value[1]]
                fixed[name] = value
            node["inputs"] = fixed
        out[str(node_id)] = node
    return out


def detect_format(data: Any) -> str:
    """"ui", "api" or "wrapped" (an API graph inside {"prompt": ...})."""
    if not isinstance(data, Mapping):
        raise WorkflowFormatError("a workflow must be a JSON object")
    if isinstance(data.get("nodes"), list):
        return "ui"
    if isinstance(data.get("prompt"), Mapping) and "class_type" not in data.get("prompt", {}):
        return "wrapped"
    if data and all(isinstance(v, Mapping) for v in data.values()) and any("class_type" in v for v in data.values()):
        return "api"  # a node without class_type is left for validation to report
    raise WorkflowFormatError(
        "not a ComfyUI workflow: expected the UI format (with 'nodes' and 'links'), "
        "the API format ({id: {class_type, inputs}}) or {\"prompt\": ...}"
    )


def nesting_depth(data: Any, limit: int = MAX_NESTING) -> int:
    """How deeply lists/objects nest in `data` (counting stops past `limit`); no recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _check_nesting(data: Any, where: str) -> None:
    if nesting_depth(data) > MAX_NESTING:
        raise WorkflowFormatError(f"{where}: the JSON nests lists/objects more than {MAX_NESTING} levels deep; "
                                  "a ComfyUI workflow never does. Is this the right file?")


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(f"{where}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise WorkflowFormatError(f"{where}: the JSON nests lists/objects too deeply to read; "
                                  "a ComfyUI workflow never does. Is this the right file?") from exc


def read_workflow_file(path: str) -> dict:
    """Read a workflow from a .json file, or from the text chunks of a ComfyUI PNG."""
    if not os.path.isfile(path):
        raise WorkflowFormatError(f"workflow file not found: {path}")
    if path.lower().endswith(".png"):
        from PIL import Image, UnidentifiedImageError  # only needed for this case

        try:
            with Image.open(path) as img:
                info = dict(getattr(img, "text", {}) or img.info)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise WorkflowFormatError(f"{path}: not a readable PNG image ({exc})") from exc
        for key in ("workflow", "prompt"):
            if key in info and isinstance(info[key], str):
                data = _parse_json(info[key], f"{path}: '{key}' metadata")
                _check_nesting(data, f"{path}: '{key}' metadata")
                return data
        raise WorkflowFormatError(f"{path}: the PNG holds no ComfyUI workflow metadata")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise WorkflowFormatError(f"{path}: not a text file (byte {exc.start} is not UTF-8): a workflow is "
                                  "a .json file saved by ComfyUI (or a PNG that ComfyUI saved)") from exc
    data = _parse_json(text, path)
    _check_nesting(data, path)
    return data


def load_workflow(source: Any, node_classes: Mapping[str, Any],
                  display_names: Optional[Mapping[str, str]] = None) -> Workflow:
    """Load a workflow (path, dict, or Workflow) in any supported format as a Workflow."""
    if isinstance(source, Workflow):
        return source
    path = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        source = read_workflow_file(path)
    else:
        _check_nesting(source, "the workflow")
    fmt = detect_format(source)
    node_classes = runnable(node_classes)
    warnings: list = []
    if fmt == "ui":
        prompt = ui_to_api(source, node_classes, display_names, warnings)
        return Workflow(prompt, "ui", ui=source, extra_pnginfo={"workflow": source}, warnings=warnings, source=path)
    if fmt == "wrapped":
        extra = source.get("extra_data")
        extra = extra.get("extra_pnginfo") if isinstance(extra, Mapping) else None
        return Workflow(normalize_api(source["prompt"]), "api", extra_pnginfo=extra, source=path)
    return Workflow(normalize_api(source), "api", source=path)
