"""The engine used as a library (as inside ComfyUI) leaves the process as it found it: a tight plan does
not retune malloc for the whole process, and the networks it loads are released on request."""

from __future__ import annotations

import gc
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import weakref

import pytest
import torch

import nst_core
from nst_core import loader
from nst_core.vgg import expected_conv_shapes
from nst_core.weights import LoadedWeights, save_weights

# A host process runs the engine as a library in a worker thread (as ComfyUI runs its nodes): one step of a
# 2048 px plan made tight by tiling. Then the main thread probes glibc's mmap threshold by its behaviour:
# once a 31 MiB block mapped on its own is freed, glibc raises a dynamic threshold to 31 MiB, so a block
# larger than every free chunk of the main heap (malloc_info) but below that is carved from the heap; once
# anyone calls mallopt(M_MMAP_THRESHOLD) the threshold stays fixed and the block is mapped on its own. A
# chunk's header (the word before the pointer) has bit 1 set for a mapped chunk.
HOST = textwrap.dedent("""
    import ctypes, os, re, tempfile, threading, torch, nst_core
    from nst_core.vgg import expected_conv_shapes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]

    def largest_free_chunk():
        path = tempfile.mktemp()
        handle = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, handle)
        libc.fclose(handle)
        with open(path) as report:
            main_heap = report.read().split('<heap nr="0">')[1].split("</heap>")[0]
        os.remove(path)
        return max((int(s) for s in re.findall(r'<size from="\\d+" to="(\\d+)"', main_heap)), default=0)

    def mapped_on_its_own():
        libc.free(libc.malloc(31 << 20))
        libc.malloc_trim(0)
        size = largest_free_chunk() + (1 << 20)
        assert size < 31 << 20, size
        block = libc.malloc(size)
        mapped = bool(ctypes.c_size_t.from_address(block - 8).value & 2)
        libc.free(block)
        return mapped

    def run():
        gen = torch.Generator().manual_seed(0)
        # VGG-19's layers, 2 channels each: the plan counts VGG-19's real widths, the step stays cheap
        convs = [(torch.randn(2, 3 if i == 3 else 2, 3, 3, generator=gen) * 0.3, torch.full((2,), 0.1))
                 for o, i in expected_conv_shapes("vgg19")]
        vgg = nst_core.VGG("vgg19", convs)
        content, style = torch.rand(1, 2048, 2048, 3, generator=gen), torch.rand(1, 256, 256, 3, generator=gen)
        result = nst_core.stylize(content, style, vgg=vgg, max_size=2048, steps=1, tile_size=1024)
        print("tight", result.plan.is_tight(), result.plan.size)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    print("mapped after the run", mapped_on_its_own())
    nst_core.memory.tune_process_allocator()         # what a command line does: the probe must see it
    print("mapped after tuning", mapped_on_its_own())
""")


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="probes glibc's malloc")
def test_a_tight_plan_leaves_malloc_settings_alone():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", HOST], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "tight True (2048, 2048)" in lines
    assert "mapped after tuning True" in lines                      # the probe sees a mallopt
    assert "mapped after the run False" in lines, "the library changed the process's malloc settings"


def _weights(tmp_path, arch: str) -> str:
    gen = torch.Generator().manual_seed(0)
    convs = [(torch.randn(o, i, 3, 3, generator=gen).half() * 0.05, torch.zeros(o).half())
             for o, i in expected_conv_shapes(arch)]
    weights = LoadedWeights(arch, convs, "caffe", "canonical", "test")
    return str(save_weights(tmp_path / f"{arch}.safetensors", weights))


def test_loaded_networks_are_bounded_and_released(tmp_path):
    """Three networks loaded (VGG-19, a VGG-16 made here, VGG-19's avg-pool variant): only the last
    KEEP_NETWORKS stay cached, and release_networks frees those too."""
    vgg19 = tmp_path / "vgg19.safetensors"
    try:                                     # a path of its own: no other test's cached network is shared
        os.link(nst_core.default_weights_path(), vgg19)
    except OSError:
        shutil.copy(nst_core.default_weights_path(), vgg19)
    loads = [dict(path=vgg19), dict(path=_weights(tmp_path, "vgg16"), normalized=False),
             dict(path=vgg19, pooling="avg")]
    refs = [weakref.ref(nst_core.load_vgg(device="cpu", **load)) for load in loads]
    gc.collect()
    assert loader.KEEP_NETWORKS == 2
    assert refs[0]() is None and all(ref() is not None for ref in refs[1:])    # the oldest was dropped
    assert nst_core.load_vgg(device="cpu", **loads[2]) is refs[2]()            # the newest is shared
    nst_core.release_networks()
    assert all(ref() is None for ref in refs)


def test_the_command_lines_tune_the_allocator_only_under_a_memory_cap(tmp_path, monkeypatch):
    """nst-stylize and the video CLI own their process: under --max-memory-gb they make RSS follow the live
    tensors the cap counts; without a cap they leave malloc as it is (its page faults cost CPU time)."""
    from nst_core import cli, memory
    from nst_core.video import cli as video_cli
    calls = []
    monkeypatch.setattr(memory, "tune_process_allocator", lambda: calls.append(1))
    missing, out = str(tmp_path / "missing.png"), str(tmp_path / "out.png")
    for main, args in [(cli.main, ["--content", missing, "-o", out]),
                       (video_cli.main, [str(tmp_path / "no_frames"), "-o", str(tmp_path / "frames")])]:
        assert main(args) == 2 and calls == []                   # the missing input stops it before any work
        assert main([*args, "--max-memory-gb", "2"]) == 2 and calls == [1]
        calls.clear()
