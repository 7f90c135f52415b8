"""Shared fixtures (the real default VGG-19, built once per session, and small example images), the torch
thread count, and the two test tiers: `python -m pytest` runs the fast tier (pyproject's addopts deselect
the tests marked `slow`), `python -m pytest -m slow` the long optimizations, the process, subprocess and
Ray tests and the full template runs. A test marked `extra("ray")` needs that optional extra: where it is
not installed the test is deselected and the summary says so and what to install."""

from __future__ import annotations

import collections
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import torch

import nst_core
from nst_core.api import fit

# the optional extras (pyproject's optional-dependencies) a test may need: extra -> the module it installs
EXTRAS = {"ray": "ray"}


def _threads() -> int:
    """One process: torch's own count (OMP_NUM_THREADS where set, else the cores). A pytest-xdist worker:
    the cores shared out among the workers, since each with torch's default would use them all."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        return torch.get_num_threads()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // int(workers))


THREADS = _threads()
torch.set_num_threads(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)      # the command lines the tests start as processes

_DESELECTED: list = []                      # every test deselected in this process, whatever deselected it
_MISSING_EXTRA: dict = {}                   # test -> the extra it needs and this environment lacks


def pytest_deselected(items):
    _DESELECTED.extend(items)


@pytest.hookimpl(trylast=True)             # after `-m`: only tests that would otherwise have run
def pytest_collection_modifyitems(config, items):
    missing = {extra for extra, module in EXTRAS.items() if importlib.util.find_spec(module) is None}
    for item in items:
        marker = item.get_closest_marker("extra")
        if marker is not None and marker.args[0] in missing:
            _MISSING_EXTRA[item] = marker.args[0]
    if _MISSING_EXTRA:
        config.hook.pytest_deselected(items=list(_MISSING_EXTRA))
        items[:] = [item for item in items if item not in _MISSING_EXTRA]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    slow = sum(1 for item in _DESELECTED if item not in _MISSING_EXTRA and item.get_closest_marker("slow"))
    if slow and "not slow" in (config.option.markexpr or ""):
        terminalreporter.write_line(f"{slow} slow tests deselected (this is the fast tier): "
                                    "`python -m pytest -m slow` runs them")
    for extra, count in sorted(collections.Counter(_MISSING_EXTRA.values()).items()):
        terminalreporter.write_line(f"{count} {extra} tests deselected: {EXTRAS[extra]} is not installed "
                                    f"(pip install -e \".[{extra}]\")")


@pytest.fixture(scope="session")
def vgg():
    return nst_core.load_vgg(device="cpu")


@pytest.fixture(scope="session")
def vgg_raw():
    return nst_core.load_vgg(normalized=False, device="cpu")


def example(name: str, max_side: int) -> torch.Tensor:
    """A bundled example image as [1,H,W,3] with its long side at most `max_side`."""
    return fit(nst_core.load_image(nst_core.example_path(name)), max_side)


@pytest.fixture(scope="session")
def cat64():
    return example("content_chelsea.png", 64)


@pytest.fixture(scope="session")
def starry64():
    return example("style_starry_night.jpg", 64)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def load_toy_nodes():
    """tests/fixtures/toy_nodes.py (small node classes for the executor tests), loaded once by path."""
    name = "nst_test_toy_nodes"
    if name not in sys.modules:
        path = pathlib.Path(__file__).parent / "fixtures" / "toy_nodes.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def toy_workdir(tmp_path, monkeypatch):
    """A working directory with ./input/harness_test.png, nst-run's registry replaced by the toy nodes."""
    import numpy as np
    from PIL import Image
    from comfyui_nst.nodes.headless import cli
    toys = load_toy_nodes()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "build_registry", toys.registry)
    (tmp_path / "input").mkdir()
    Image.fromarray(np.full((4, 6, 3), 100, np.uint8)).save(tmp_path / "input" / "harness_test.png")
    toys.reset()
    return tmp_path


HEADLESS_DIR = pathlib.Path(__file__).resolve().parents[1] / "nodes" / "headless"
# A fresh Python in which nst_core cannot be imported and nodes/headless is the package `headless_alone`
_HEADLESS_ALONE = f"""
import importlib, importlib.abc, importlib.util, pathlib, sys

class NoEngine(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "nst_core":
            raise ImportError("nst_core is blocked in this test")
        return None

sys.meta_path.insert(0, NoEngine())
folder = pathlib.Path({str(HEADLESS_DIR)!r})
spec = importlib.util.spec_from_file_location("headless_alone", folder / "__init__.py",
                                              submodule_search_locations=[str(folder)])
package = importlib.util.module_from_spec(spec)
sys.modules["headless_alone"] = package
spec.loader.exec_module(package)
"""


@pytest.fixture
def run_headless_alone():
    """Run a script (its text, any indentation) after the runner was loaded without the engine."""
    def run(body: str) -> subprocess.CompletedProcess:
        script = _HEADLESS_ALONE + textwrap.dedent(body)
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    return run
