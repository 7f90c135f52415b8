"""nst-stylize under hostile input (issue 10): options checked by the engine's settings with messages naming
the flag, the output path checked before the work, nothing overwritten or half-written, Ctrl-C without a
traceback, exit codes. Runs main(argv) in-process (32 px, 2 steps), a subprocess for SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import nst_core
from nst_core import cli
from nst_core.settings import MAX_STEPS

TINY = ["--size", "32", "--steps", "2", "--quiet"]


def _stylize(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr); a KeyboardInterrupt escaping main is a failure."""
    try:
        code = cli.main([str(a) for a in argv])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped nst-stylize's main()")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def no_run(monkeypatch):
    """api.stylize fails the test if reached: the problem must be found before the work."""
    def refuse(*args, **kwargs):
        pytest.fail("the run started although the command line was refused")
    monkeypatch.setattr(nst_core.api, "stylize", refuse)


# ---------------------------------------------------------------------------------------------
# options from settings.OPTIONS


def test_help_says_exit_codes_and_output_rules():
    text = cli.build_parser().format_help()
    assert "exit codes" in text and "130" in text and "--overwrite" in text


@pytest.mark.parametrize("flag, value", [
    ("--style-weight", "nan"), ("--content-weight", "inf"), ("--tv-weight", "-1"),
    ("--seed", "18446744073709551616"), ("--steps", "1000000000"), ("--steps", str(MAX_STEPS + 1)),
    ("--steps", "2.5"), ("--size", "0"), ("--lr", "-0.1"), ("--style-scale", "abc"), ("--seed", "-1"),
])
def test_bad_numbers_are_refused_naming_the_flag(tmp_path, capsys, no_run, flag, value):
    options = {"--size": "32", "--steps": "2", flag: value, "-o": str(tmp_path / "out.png")}
    code, out, err = _stylize([item for pair in options.items() for item in pair] + ["--quiet"], capsys)
    assert code == 2
    assert flag in err
    assert "Overflow" not in err and not list(tmp_path.iterdir())


def test_bad_device_and_blend_are_usage_errors(tmp_path, capsys, no_run):
    code, _, err = _stylize(TINY + ["--device", "warp-drive", "-o", tmp_path / "a.png"], capsys)
    assert code == 2 and "--device" in err
    code, _, err = _stylize(TINY + ["--style-blend", "1", "2", "-o", tmp_path / "a.png"], capsys)
    assert code == 2 and "--style-blend" in err


def test_a_strength_under_the_paper_weighting_is_refused_saying_what_to_type(tmp_path, capsys, no_run):
    """--weighting paper with the default style weight 5 would return the photo unchanged: exit 2 before any
    work, the message names --style-weight and gives the flags that work (issue 27.5)."""
    code, _, err = _stylize(TINY + ["--weighting", "paper", "-o", tmp_path / "a.png"], capsys)
    assert code == 2 and "error: --style-weight: 5 is a strength" in err
    assert "--weighting relative" in err and "--style-weight 5e+06" in err
    assert not list(tmp_path.iterdir())
    args = cli.build_parser().parse_args(["--weighting", "paper", "--style-weight", "5e6"])
    assert cli.run_options(args).style_weight == 5e6                        # a paper β is fine


def test_an_older_paper_beta_runs_as_paper_with_a_warning(tmp_path, capsys):
    code, _, err = _stylize(TINY + ["--style-weight", "1e5", "-o", tmp_path / "a.png"], capsys)
    assert code == 0 and "warning: style weight 100000 is a paper-weighting" in err


# ---------------------------------------------------------------------------------------------
# the output path, checked before the work


def test_output_without_extension_is_png(tmp_path, capsys):
    code, out, err = _stylize(TINY + ["-o", tmp_path / "result"], capsys)
    assert code == 0
    assert "PNG" in err and (tmp_path / "result.png").exists()
    with Image.open(tmp_path / "result.png") as img:
        assert img.format == "PNG" and max(img.size) == 32


@pytest.mark.parametrize("existing", [False, True])
def test_output_folder_gets_stylized_png(tmp_path, capsys, existing):
    folder = tmp_path / "some_folder"
    if existing:
        folder.mkdir()
    target = str(folder) + ("" if existing else "/")
    code, out, err = _stylize(TINY + ["-o", target], capsys)
    assert code == 0
    assert (folder / "stylized.png").exists() and "folder" in err


@pytest.mark.parametrize("case", ["unknown_extension", "parent_is_a_file"])
def test_unusable_output_is_refused_before_the_work(tmp_path, capsys, no_run, case):
    (tmp_path / "afile").write_text("not a folder")
    target = {"unknown_extension": tmp_path / "out.xyz", "parent_is_a_file": tmp_path / "afile" / "out.png"}[case]
    code, _, err = _stylize(TINY + ["-o", target], capsys)
    assert code == 2 and "--output" in err


def test_existing_output_is_never_overwritten_unless_asked(tmp_path, capsys):
    target = tmp_path / "out.png"
    target.write_bytes(b"someone else's image")
    code, out, err = _stylize(TINY + ["-o", target], capsys)
    assert code == 0
    assert target.read_bytes() == b"someone else's image"
    assert (tmp_path / "out_1.png").exists() and "out_1.png" in out
    code, out, err = _stylize(TINY + ["-o", target], capsys)
    assert (tmp_path / "out_2.png").exists()
    code, out, err = _stylize(TINY + ["-o", target, "--overwrite"], capsys)
    assert code == 0
    with Image.open(target) as img:
        assert img.format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "out_1.png", "out_2.png"]


def test_concurrent_saves_into_one_folder_lose_nothing(tmp_path):
    """Many writers claiming numbered names at the same instant: every image lands in its own file."""
    writers, rounds = 6, 5
    target = tmp_path / "out.png"
    for round_ in range(rounds):
        barrier = threading.Barrier(writers)
        written, errors = [], []

        def write(value):
            image = torch.full((1, 8, 8, 3), value / 255)
            barrier.wait()
            try:
                written.append((value, cli.save_image(image, target, overwrite=False)))
            except Exception as exc:   # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(round_ * writers + i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len({path for _, path in written}) == writers
        for value, path in written:
            assert np.asarray(Image.open(path))[0, 0, 0] == value
    assert len(list(tmp_path.iterdir())) == writers * rounds      # no temporary files left


def test_failure_while_writing_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_save(self, stream, *args, **kwargs):
        stream.write(b"\x89PNG half an image")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        cli.save_image(torch.zeros((1, 8, 8, 3)), tmp_path / "out.png", overwrite=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# errors: messages, exit codes, --verbose


def test_input_problems_are_messages_not_tracebacks(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    from test_engine_reliability import _png
    bomb.write_bytes(_png(20_000, 20_000, 0, 8))
    code, _, err = _stylize(TINY + ["--content", bomb, "-o", tmp_path / "a.png"], capsys)
    assert code == 2 and "--content" in err and "400,000,000 pixels" in err
    code, _, err = _stylize(TINY + ["--style", tmp_path / "missing.jpg", "-o", tmp_path / "a.png"], capsys)
    assert code == 2 and "--style" in err and "not found" in err
    nan_weights = tmp_path / "nan.safetensors"
    from safetensors.torch import save_file
    from test_engine_reliability import _small_vgg16
    sd = _small_vgg16()
    sd["conv2_1.weight"][0, 0, 0, 0] = float("nan")
    save_file(sd, str(nan_weights))
    code, _, err = _stylize(TINY + ["--weights", nan_weights, "-o", tmp_path / "a.png"], capsys)
    assert code == 2 and "--weights" in err and "conv2_1.weight" in err and "NaN" in err
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. "
                                   "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")])
def test_out_of_memory_is_a_message(tmp_path, capsys, monkeypatch, error):
    def run_out(*args, **kwargs):
        raise error
    monkeypatch.setattr(nst_core.api, "stylize", run_out)
    code, _, err = _stylize(TINY + ["-o", tmp_path / "a.png"], capsys)
    assert code == 1 and "memory" in err and "--size" in err


def test_verbose_shows_the_traceback(tmp_path, capsys):
    cli.main(TINY + ["--steps", "0", "-o", str(tmp_path / "a.png")])
    assert "Traceback" not in capsys.readouterr().err
    cli.main(TINY + ["--content", str(tmp_path / "missing.png"), "--verbose", "-o", str(tmp_path / "a.png")])
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("stopped", ["diverged", "non-finite loss"])
def test_diverged_run_saves_the_best_image_and_exits_3(tmp_path, capsys, monkeypatch, stopped):
    def diverging(*args, **kwargs):
        return SimpleNamespace(image=torch.full((1, 16, 24, 3), 0.25), history=[{}] * 5, stopped=stopped,
                               warnings=[f"the run {stopped} at step 6 (adam, lr=50)"])
    monkeypatch.setattr(nst_core.api, "stylize", diverging)
    code, out, err = _stylize(TINY + ["-o", tmp_path / "a.png"], capsys)
    assert code == 3
    assert "warning" in err and stopped in err
    assert np.asarray(Image.open(tmp_path / "a.png"))[0, 0, 0] == 64


def test_keyboard_interrupt_before_the_run_is_exit_130(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(nst_core.loader, "load_vgg", interrupted)
    code, _, err = _stylize(TINY + ["-o", tmp_path / "a.png"], capsys)
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# progress


def _progress(step, total, level_index, levels, level_step, size):
    level = SimpleNamespace(index=level_index, size=size, steps=total, label=f"{size[1]}x{size[0]} px")
    progress = SimpleNamespace(step=step, total=total, level=level, levels=levels, level_step=level_step,
                               level_started=level_step == 1, stage=0, stages=1, losses={"total": 1.5e6},
                               stopped=False)
    progress.stop = lambda: setattr(progress, "stopped", True)
    return progress


def test_progress_bar_shows_levels_and_stops_on_request(capsys):
    interrupts = cli.Interrupts()
    bar = nst_core.ConsoleProgress(then=lambda p: p.stop() if interrupts.requested else None)
    bar(_progress(1, 10, 0, 2, 1, (85, 128)))
    assert bar.bar.desc.startswith("level 1/2: 128x85 px")
    bar(_progress(6, 10, 1, 2, 1, (170, 256)))
    assert bar.bar.desc.startswith("level 2/2: 256x170 px") and bar.bar.n == 6
    interrupts.requested = True
    last = _progress(7, 10, 1, 2, 2, (170, 256))
    bar(last)
    assert last.stopped and bar.step == 7
    bar.close()


# ---------------------------------------------------------------------------------------------
# Ctrl-C in a real process


def _wait_for(process, pattern: str, seconds: float) -> str:
    """Read stderr until `pattern` appears (the run has started)."""
    seen, deadline = b"", time.monotonic() + seconds
    os.set_blocking(process.stderr.fileno(), False)
    while time.monotonic() < deadline and process.poll() is None:
        chunk = process.stderr.read()
        if chunk:
            seen += chunk
            if re.search(pattern, seen.decode(errors="replace")):
                return seen.decode(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not seen in stderr: {seen[-2000:]!r}")


@pytest.mark.slow
@pytest.mark.parametrize("keep_partial", [False, True])
def test_ctrl_c_during_a_run(tmp_path, keep_partial):
    steps = 5000
    argv = [sys.executable, "-m", "nst_core", "--size", "48", "--steps", str(steps), "--no-coarse-to-fine",
            "-o", str(tmp_path / "out.png")] + (["--keep-partial"] if keep_partial else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        seen = _wait_for(process, rf"/{steps}", 120)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    err = seen + err.decode(errors="replace")
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    step = int(re.search(rf"interrupted at step (\d+)/{steps}", err).group(1))
    assert 1 <= step < steps
    files = sorted(p.name for p in tmp_path.iterdir())
    if keep_partial:
        assert files == ["out.png"]
        with Image.open(tmp_path / "out.png") as img:
            assert img.size == (48, 32)
    else:
        assert files == [] and "nothing written" in err
