"""nst-run owns its process; a ComfyUI server and a library caller do not. NST Optimize tunes the allocator
only in a process the pack owns and only under a memory cap (nst-stylize's rule for --max-memory-gb)."""

from __future__ import annotations

import pytest
import torch

import nst_core

import comfyui_nst.nodes as pack
from comfyui_nst.nodes import host
from comfyui_nst.nodes.nst_nodes import NST_Optimize


@pytest.fixture
def tunes(monkeypatch):
    calls = []
    monkeypatch.setattr(host.nst_core.memory, "tune_process_allocator", lambda: calls.append(1))
    monkeypatch.setattr(host, "_owns_process", False)
    return calls


def test_a_process_the_pack_does_not_own_is_never_tuned(tunes):
    host.follow_memory_cap(2.25)
    assert tunes == []


def test_nst_run_tunes_only_under_a_memory_cap(tunes):
    pack.own_process()                  # what nst-run's start does
    host.follow_memory_cap(0)
    assert tunes == []
    host.follow_memory_cap(2.25)
    assert tunes == [1]


def test_nst_optimize_passes_its_memory_cap(tunes, monkeypatch):
    heard = []
    monkeypatch.setattr(host, "follow_memory_cap", heard.append)
    def stop(*args, **kwargs):
        raise RuntimeError("stop before any work")
    monkeypatch.setattr(nst_core, "optimize_batch", stop)
    vgg = nst_core.load_vgg(device="cpu")
    content = nst_core.ContentTarget(vgg, torch.rand(1, 32, 32, 3), ["relu2_1"])
    with pytest.raises(Exception, match="stop before any work"):
        NST_Optimize.execute(vgg, content, steps=1, max_memory_gb=1.5)
    assert heard == [1.5]
