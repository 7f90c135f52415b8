"""Shared fixtures: the real default VGG-19 (built once per session) and small example images."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest
import torch

import nst_core
from nst_core.api import fit


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
