"""The runs of a fan-out: `--sweep NODE.INPUT=V1,V2,...` axes and `--inputs DIR` (one run per image).

Each axis is a list of (node id, input, value); the runs are their cartesian product, the folder
of images first (outermost), then the sweeps in the order given, the last one varying fastest, so
run_0001, run_0002, ... always mean the same values. Only the command line is read here: nothing runs.
"""
from __future__ import annotations

import itertools
import json
import mimetypes
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .overrides import OverrideError, check_input, find_node, parse_value, set_input, split_target

__all__ = ["SweepAxis", "RunPoint", "parse_sweep", "inputs_axis", "image_files", "run_points", "apply_point",
           "LOAD_IMAGE_CLASS", "MAX_RUNS"]

LOAD_IMAGE_CLASS = "LoadImage"
MAX_RUNS = 100_000   # a typo such as a 1000-value range times another should fail fast, not run for a year


@dataclass(frozen=True)
class SweepAxis:
    """One --sweep (or the --inputs folder): the label the user wrote and the values it takes."""

    label: str          # "Style transfer.steps" as written on the command line
    node_id: str
    input_name: str
    values: tuple       # the JSON-parsed values, in the order given
    files: tuple = ()   # --inputs only: the absolute path of each image (values are their names)


@dataclass
class RunPoint:
    """One run of a fan-out: its number, name and the values it sets."""

    index: int                                   # 1, 2, ...
    settings: list = field(default_factory=list)  # [(axis, value index)]

    @property
    def name(self) -> str:
        return f"run_{self.index:04}"

    def values(self) -> dict:
        """{label: value} as written on the command line (the manifest and the PNGs record it)."""
        return {axis.label: _plain(axis.values[i]) for axis, i in self.settings}

    def input_files(self) -> dict:
        """{image name: absolute path} of the --inputs image this run reads (empty without --inputs)."""
        return {axis.values[i]: axis.files[i] for axis, i in self.settings if axis.files}


def _plain(value: Any) -> Any:
    """A list value is kept as {"__value__": [...]} in the graph; the records show the list."""
    return value["__value__"] if isinstance(value, dict) and set(value) == {"__value__"} else value


def _split_values(raw: str, text: str) -> list:
    """"1,2,3" -> ["1", "2", "3"]; a JSON list ('["a,b", "c"]') for values that hold commas."""
    stripped = raw.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            items = None
        if isinstance(items, list):
            return [json.dumps(item) for item in items]
    parts = raw.split(",")
    if any(part.strip() == "" for part in parts):
        raise OverrideError(f"--sweep {text!r}: an empty value in the list (values are separated by commas; "
                            "a value that holds commas needs the JSON list form: NODE.INPUT='[\"a,b\", \"c\"]')")
    return [part.strip() for part in parts]


def parse_sweep(text: str, prompt: Mapping, node_classes: Mapping[str, Any]) -> SweepAxis:
    """One --sweep argument -> a SweepAxis, the node found by id or title as --set finds it."""
    ref, name, raw = split_target(text, "--sweep")
    nid = find_node(prompt, ref, "--sweep")
    check_input(prompt, nid, name, node_classes, "--sweep")
    values = [parse_value(v) for v in _split_values(raw, text)]
    if not values:
        raise OverrideError(f"--sweep {text!r}: no values")
    return SweepAxis(f"{ref}.{name}", nid, name, tuple(values))


def image_files(folder: str) -> list:
    """The image files directly in `folder` (by file name type), sorted by name; hidden files left out."""
    names = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        if (mimetypes.guess_type(name, strict=False)[0] or "").startswith("image/"):
            names.append(name)
    return sorted(names)


def inputs_axis(folder: str, node_ref: Optional[str], prompt: Mapping) -> SweepAxis:
    """--inputs DIR [--inputs-node NODE]: every image of DIR through one LoadImage node."""
    if not os.path.isdir(folder):
        raise OverrideError(f"--inputs: {folder!r} is not a folder")
    if node_ref is None:
        loaders = sorted(nid for nid, node in prompt.items() if node.get("class_type") == LOAD_IMAGE_CLASS)
        if not loaders:
            raise OverrideError("--inputs: the workflow has no LoadImage node to feed the images to")
        if len(loaders) > 1:
            labels = ", ".join(f"{nid} ({prompt[nid].get('_meta', {}).get('title') or LOAD_IMAGE_CLASS})"
                               for nid in loaders)
            raise OverrideError(f"--inputs: the workflow has several LoadImage nodes ({labels}); "
                                "choose one with --inputs-node NODE (id or title)")
        nid, label = loaders[0], f"{loaders[0]}.image"
    else:
        nid = find_node(prompt, node_ref, "--inputs-node")
        if prompt[nid].get("class_type") != LOAD_IMAGE_CLASS:
            raise OverrideError(f"--inputs-node: node {nid} is a {prompt[nid].get('class_type')}, not a LoadImage")
        label = f"{node_ref}.image"
    names = image_files(folder)
    if not names:
        raise OverrideError(f"--inputs: no image files in {folder!r}")
    folder = os.path.abspath(folder)
    return SweepAxis(label, nid, "image", tuple(names), tuple(os.path.join(folder, n) for n in names))


def run_points(axes: list) -> list:
    """The cartesian product of the axes as RunPoints numbered from 1."""
    total = 1
    for axis in axes:
        total *= len(axis.values)
    if total > MAX_RUNS:
        sizes = " x ".join(str(len(a.values)) for a in axes)
        raise OverrideError(f"--sweep/--inputs: {sizes} = {total} runs, more than {MAX_RUNS}; split the sweep")
    combos = itertools.product(*[range(len(a.values)) for a in axes])
    return [RunPoint(i, list(zip(axes, combo))) for i, combo in enumerate(combos, start=1)]


def apply_point(prompt: dict, point: RunPoint) -> dict:
    """A copy of `prompt` with the run's values set (the original is left as it is)."""
    graph = json.loads(json.dumps(prompt))
    for axis, i in point.settings:
        set_input(graph, axis.node_id, axis.input_name, axis.values[i], "--sweep")
    return graph
