"""What a fresh machine installs: ComfyUI-Manager's requirements.txt covers every node of the pack (the
project's core dependencies but torch, which ComfyUI brings), and the tests import the pack as
`comfyui_nst.nodes`, never as a top-level `nodes` (ComfyUI's own module: under `python -m pytest` that
loaded every node file twice under two names, under plain `pytest` it did not collect)."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[#]", requirement.strip(), maxsplit=1)[0].lower()


def test_requirements_txt_lists_every_core_dependency_but_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_name(r) for r in project["dependencies"]} - {"torch"}
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    listed = {_name(line) for line in lines if line.strip() and not line.lstrip().startswith("#")}
    assert "opencv-python-headless" in core                     # the video nodes run inside ComfyUI too
    assert listed == core


def test_tests_never_import_a_top_level_nodes_module():
    pattern = re.compile(r"^\s*(from\s+nodes(\.|\s+import)|import\s+nodes\b)", re.MULTILINE)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")
                 if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
