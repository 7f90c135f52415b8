"""Numbered output files: claimed atomically, never overwritten, never left half-written.

Writers here are separate processes (started together through a file barrier) loading
nodes/headless/files.py on its own; the threaded case through SaveImage is in test_core_nodes.py.
"""
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from comfyui_nst.nodes.headless import files
from comfyui_nst.nodes.headless.files import PARTIAL_PREFIX, save_image_path, write_new_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
FILES_PY = ROOT / "nodes" / "headless" / "files.py"
TESTS = ROOT / "tests"

LOAD_FILES = f"""
import importlib.util, os, sys, time, hashlib
spec = importlib.util.spec_from_file_location("files_probe", {str(FILES_PY)!r})
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
"""

WRITER = LOAD_FILES + """
folder, barrier, wid, rounds, writers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
for r in range(rounds):
    open(os.path.join(barrier, f"ready-{r}-{wid}"), "w").close()
    deadline = time.monotonic() + 60
    while sum(n.startswith(f"ready-{r}-") for n in os.listdir(barrier)) < writers:
        assert time.monotonic() < deadline, "barrier timed out"
        time.sleep(0.0005)
    data = os.urandom(300_000)
    header = f"writer {wid} round {r} {hashlib.sha256(data).hexdigest()}\\n".encode()
    out, prefix, counter, _ = files.save_image_path("proc/img", folder)
    files.write_new_file(out, lambda n: f"{prefix}_{n:05}_.bin", lambda fh: fh.write(header + data), first=counter)
"""


def _visible(folder: pathlib.Path) -> list:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(PARTIAL_PREFIX))


def test_processes_writing_at_once_lose_nothing(tmp_path):
    rounds, writers = 8, 3
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "out"), str(barrier), str(w),
                               str(rounds), str(writers)]) for w in range(writers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    folder = tmp_path / "out" / "proc"
    names = sorted(os.listdir(folder))
    assert names == [f"img_{n:05}_.bin" for n in range(1, rounds * writers + 1)]   # no temp file left either
    seen = set()
    for name in names:
        header, data = (folder / name).read_bytes().split(b"\n", 1)
        _, wid, _, r, digest = header.decode().split()
        assert hashlib.sha256(data).hexdigest() == digest   # whole, and nobody else's bytes
        seen.add((int(wid), int(r)))
    assert seen == {(w, r) for w in range(writers) for r in range(rounds)}


KILLED_WRITER = LOAD_FILES + """
folder, marker = sys.argv[1], sys.argv[2]

def slow(fh):
    fh.write(b"x" * 1_000_000)
    fh.flush()
    open(marker, "w").close()
    time.sleep(120)   # killed here, in the middle of the save
    fh.write(b"end")

files.write_new_file(folder, lambda n: f"out_{n:05}_.png", slow)
"""


def _wait_for(path: pathlib.Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, "the writer ended early"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_a_writer_killed_mid_save_leaves_no_output_file(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "out_00001_.png").write_bytes(b"earlier run")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(folder), str(tmp_path / "started")])
    _wait_for(tmp_path / "started", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _visible(folder) == ["out_00001_.png"]                      # no partial file under an output name
    assert (folder / "out_00001_.png").read_bytes() == b"earlier run"  # nothing overwritten
    (partial,) = [p for p in folder.iterdir() if p.name.startswith(PARTIAL_PREFIX)]   # SIGKILL: a hidden temp
    old = time.time() - files.STALE_PARTIAL_SECONDS - 5
    os.utime(partial, (old, old))
    assert save_image_path("out", str(folder))[2] == 2
    assert not partial.exists()                                        # the next save swept it (its writer is dead)


def test_a_live_writers_temp_file_is_not_swept(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    mine = folder / f"{PARTIAL_PREFIX}{os.getpid()}-abc.tmp"
    mine.write_bytes(b"in progress")
    old = time.time() - files.STALE_PARTIAL_SECONDS - 5
    os.utime(mine, (old, old))
    save_image_path("out", str(folder))
    assert mine.exists()


def test_write_new_file_takes_the_next_free_name_and_cleans_up_on_error(tmp_path):
    (tmp_path / "a_00003_.txt").write_text("taken")
    path, n = write_new_file(str(tmp_path), lambda k: f"a_{k:05}_.txt", lambda fh: fh.write(b"new"), first=3)
    assert (pathlib.Path(path).name, n) == ("a_00004_.txt", 4) and pathlib.Path(path).read_bytes() == b"new"
    assert (tmp_path / "a_00003_.txt").read_text() == "taken"

    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_new_file(str(tmp_path), lambda k: f"a_{k:05}_.txt", fail)
    assert sorted(os.listdir(tmp_path)) == ["a_00003_.txt", "a_00004_.txt"]


def test_without_hard_links_the_name_is_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")   # EPERM, as on file systems without hard links

    monkeypatch.setattr(files.os, "link", no_links)
    (tmp_path / "b_00001_.png").write_bytes(b"old")
    path, n = write_new_file(str(tmp_path), lambda k: f"b_{k:05}_.png", lambda fh: fh.write(b"new"))
    assert n == 2 and pathlib.Path(path).read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["b_00001_.png", "b_00002_.png"]


NST_RUN_TERMINATED = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from conftest import load_toy_nodes
from comfyui_nst.nodes.headless import cli, files

def slow_fsync(fd, _real=files.os.fsync):
    _real(fd)
    open(sys.argv[2], "w").close()
    time.sleep(120)   # SIGTERM arrives here: the picture is written but not yet published

files.os.fsync = slow_fsync
cli.build_registry = load_toy_nodes().registry
sys.exit(cli.main([sys.argv[1], "--output-dir", "out", "-q"]))
"""


@pytest.mark.slow
def test_nst_run_terminated_mid_save_leaves_nothing(tmp_path):
    workflow = tmp_path / "wf.json"
    workflow.write_text('{"1": {"class_type": "ToyNoise", "inputs": {"width": 8, "height": 8, "seed": 1}},'
                        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}')
    proc = subprocess.Popen([sys.executable, "-c", NST_RUN_TERMINATED, str(workflow), str(tmp_path / "started")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "started", proc, seconds=120)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "nst-run: interrupted" in err and "Traceback" not in err
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
