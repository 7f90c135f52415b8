"""python -m nst_core.video: a folder of frames stylized in chunks over 2 worker processes, written as
frame_NNNNN.png; the same frames as the in-process run; a used output folder and bad options refused."""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core.video import pan_clip
from nst_core.video.cli import chunks_for_workers, main

from conftest import example

STYLE = str(nst_core.example_path("style_starry_night.jpg"))
SMALL = ["--steps", "2", "--size", "32", "--style", STYLE]


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    clip = pan_clip(example("content_chelsea.png", 64), 5, 2, 1, size=(32, 32))
    for t in range(clip.shape[0]):
        nst_core.to_pil(clip[t:t + 1]).save(folder / f"in_{t}.png")
    return folder


def test_chunks_for_workers():
    assert chunks_for_workers(11, 2) == 6                     # (0, 6) and (5, 11)
    assert chunks_for_workers(5, 2) == 3                      # (0, 3) and (2, 5)
    assert chunks_for_workers(12, 1) == 0 and chunks_for_workers(2, 2) == 0


@pytest.mark.slow
def test_two_workers_write_the_frames_of_the_serial_run(frames_dir, tmp_path, capsys):
    threads = ["--threads", str(torch.get_num_threads())]
    assert main([str(frames_dir), "--output", str(tmp_path / "here"), "--chunk-frames", "3", *SMALL, *threads]) == 0
    assert main([str(frames_dir), "--output", str(tmp_path / "there"), "--workers", "2", *SMALL, *threads]) == 0
    err = capsys.readouterr().err
    assert "5 frames written" in err and "chunks: 0-2, 2-4; workers: 2" in err and "across chunk borders" in err
    here = sorted((tmp_path / "here").iterdir())
    there = sorted((tmp_path / "there").iterdir())
    assert [p.name for p in there] == [f"frame_{t:05d}.png" for t in range(5)] == [p.name for p in here]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(here, there))
    # a second run never overwrites the first one's frames
    assert main([str(frames_dir), "--output", str(tmp_path / "there"), *SMALL]) == 2
    assert "already holds frames" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--chunk-frames", "1"], "--chunk-frames: a chunk shares its first frame"),
    (["--workers", "0"], "--workers and --threads must be 1 or more"),
    (["--temporal-weight", "-1"], "--temporal-weight: "),
    (["--weighting", "raw"], "--weighting: "),
    (["--style-weight", "-1"], "--style-weight: "),
    (["--weighting", "paper"], "--style-weight: 5 is a strength"),      # would leave every frame the photo
    (["--init", "image"], "--init image needs --init-image"),
    (["--device", "warp-drive"], "--device: unknown device"),
])
def test_bad_options_are_usage_errors(frames_dir, tmp_path, capsys, argv, message):
    assert main([str(frames_dir), "--output", str(tmp_path / "out"), *SMALL, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("frame_*.png")) if (tmp_path / "out").exists() else True


def test_missing_frames_are_usage_errors(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere.png"), "--output", str(tmp_path / "out"), *SMALL]) == 2
    assert "frames: not a file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--output", str(tmp_path / "out"), *SMALL]) == 2
    assert "frames: no images in" in capsys.readouterr().err


def test_loss_flags_reach_the_run_and_an_old_beta_warns_once(frames_dir, tmp_path, capsys):
    """--style-weight / --weighting as nst-stylize's; a paper β under the default weighting runs as paper
    and says so once for the clip, not once per frame."""
    out = tmp_path / "beta"
    assert main([str(frames_dir), "--output", str(out), *SMALL, "--style-weight", "5e6",
                 "--temporal-weight", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("is a paper-weighting") == 1 and "frames 0-4: style weight 5e+06" in err
    assert main([str(frames_dir), "--output", str(tmp_path / "paper"), *SMALL, "--style-weight", "5e6",
                 "--weighting", "paper", "--temporal-weight", "0"]) == 0
    assert "paper-weighting" not in capsys.readouterr().err
    for a, b in zip(sorted(out.iterdir()), sorted((tmp_path / "paper").iterdir())):
        assert a.read_bytes() == b.read_bytes()


def test_frame_notes_name_the_frames_once():
    from nst_core.video.frames import frame_notes
    notes = [(0, "a"), (1, "a"), (2, "a"), (2, "b"), (5, "a"), (7, "c")]
    assert frame_notes(notes) == ["frames 0-2, 5: a", "frame 2: b", "frame 7: c"]
