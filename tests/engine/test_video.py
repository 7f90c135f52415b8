"""Video (nst_core.video): optical flow, occlusion masks, the temporal loss, and the clip loop's must-show:
on a photo panned by a known shift, the temporal loss cuts the warped-frame difference by at least half
while every frame's style loss stays within 1.5x of stylizing the frames independently."""

from __future__ import annotations

import sys
import time

import pytest
import torch

import nst_core
from nst_core.objective import Objective
from nst_core.video import (DEFAULT_TEMPORAL_WEIGHT, TemporalLoss, VideoDependencyError, flow_pair, keep_mask,
                            optical_flow, pan_clip, stylize_frames, warp, warped_differences)
from nst_core.video.occlusion import consistent, motion_boundary

from conftest import example

H, W, FRAMES = 48, 64, 4
SHIFT = (3, 1)                     # the camera pans right by 3 px and down by 1 px per frame
STEPS = 12
STRIP = "/tmp/nst_video_strip.png"


@pytest.fixture(scope="module")
def clip():
    """FRAMES frames of 64x48 px panning across content_chelsea (96 px wide) by SHIFT per frame."""
    return pan_clip(example("content_chelsea.png", 96), FRAMES, *SHIFT, size=(H, W))


def test_pan_clip_is_exact_crops_of_the_photo(clip):
    photo = example("content_chelsea.png", 96)[0]
    dx, dy = SHIFT
    assert clip.shape == (FRAMES, H, W, 3)
    top, left = next((y, x) for y in range(photo.shape[0] - H + 1) for x in range(photo.shape[1] - W + 1)
                     if torch.allclose(photo[y:y + H, x:x + W], clip[0], atol=1e-5))
    for t in range(FRAMES):
        window = photo[top + t * dy:top + t * dy + H, left + t * dx:left + t * dx + W]
        assert torch.allclose(window, clip[t], atol=1e-5)
    largest = pan_clip(photo, FRAMES, *SHIFT)                            # the largest frames that fit
    assert largest.shape[1:3] == (photo.shape[0] - dy * (FRAMES - 1), photo.shape[1] - dx * (FRAMES - 1))
    zoomed = pan_clip(photo, 3, 0, 0, zoom=1.25)                         # closer each frame: the centre grows
    assert zoomed.shape[1:3] == photo.shape[:2]
    assert not torch.allclose(zoomed[0], zoomed[2], atol=0.05)
    with pytest.raises(nst_core.ImageError, match="at least 32 px"):
        pan_clip(photo, 40, 3, 1)
    with pytest.raises(nst_core.OptionError, match="zoom"):
        pan_clip(photo, 3, 0, 0, zoom=5)


def shifted_difference(video: torch.Tensor) -> list[float]:
    """Per pair: mean |frame t − frame t−1 moved by the TRUE shift| over the pixels both frames see."""
    dx, dy = SHIFT
    return [float((video[t, :H - dy, :W - dx] - video[t - 1, dy:, dx:]).abs().mean()) for t in range(1, len(video))]


# ----------------------------------------------------------------------------------------------
# flow, warp, occlusion

def test_flow_recovers_the_pan(clip):
    for t in range(1, FRAMES):
        forward, backward = flow_pair(clip[t - 1], clip[t])
        assert forward.shape == backward.shape == (H, W, 2)
        inner = (slice(2, H - 4), slice(2, W - 6))          # away from the strip that enters the view
        error_back = (backward[inner] - torch.tensor(SHIFT, dtype=torch.float32)).norm(dim=-1)
        error_forward = (forward[inner] + torch.tensor(SHIFT, dtype=torch.float32)).norm(dim=-1)
        # measured: mean end-point error 0.01-0.07 px, max 0.3 px
        assert float(error_back.mean()) < 0.15 and float(error_forward.mean()) < 0.15
        assert float(error_back.max()) < 0.75


def test_warp_brings_the_previous_frame_onto_the_current_one(clip):
    backward = torch.zeros(H, W, 2)
    backward[..., 0], backward[..., 1] = SHIFT
    previous = clip[0].permute(2, 0, 1)[None]
    warped = warp(previous, backward)[0].permute(1, 2, 0)
    dx, dy = SHIFT
    assert torch.allclose(warped[:H - dy, :W - dx], clip[1][:H - dy, :W - dx], atol=1e-5)
    # with the computed flow the warp is close too (bilinear at sub-pixel errors)
    _, flow = flow_pair(clip[0], clip[1])
    computed = warp(previous, flow)[0].permute(1, 2, 0)
    assert float((computed - clip[1])[:H - dy, :W - dx].abs().mean()) < 0.02


def test_occlusion_mask_drops_the_strip_entering_the_view(clip):
    dx, dy = SHIFT
    for t in range(1, FRAMES):
        mask = keep_mask(*flow_pair(clip[t - 1], clip[t]))
        assert mask.shape == (H, W)
        assert float(mask[:, W - dx:].sum()) == 0 and float(mask[H - dy:, :].sum()) == 0
        # everything else is seen in both frames and kept (measured: 100 %)
        assert float(mask[:H - dy, :W - dx].mean()) > 0.97


def test_consistency_check_and_motion_boundaries():
    backward = torch.zeros(16, 16, 2)
    backward[..., 0] = 2.0
    assert bool(consistent(-backward, backward).all())                 # there and back again
    assert not bool(consistent(backward, backward).any())              # the forward flow disagrees
    assert not bool(motion_boundary(backward).any())                   # a uniform pan has no boundary
    step = backward.clone()
    step[:, 8:, 0] = -2.0                                              # two objects moving apart
    boundary = motion_boundary(step)
    assert bool(boundary[:, 7:9].all()) and not bool(boundary[:, :6].any()) and not bool(boundary[:, 10:].any())


def test_missing_opencv_names_the_extra(monkeypatch, clip, vgg, starry64):
    monkeypatch.setitem(sys.modules, "cv2", None)                      # import cv2 -> ImportError
    with pytest.raises(VideoDependencyError, match=r"pip install \.\[video\]"):
        optical_flow(clip[0], clip[1])
    calls = []
    with pytest.raises(VideoDependencyError, match=r"pip install \.\[video\]"):
        stylize_frames(clip, starry64, vgg=vgg, steps=1, max_size=None, callback=calls.append)
    assert calls == []                                                 # refused before any frame ran


# ----------------------------------------------------------------------------------------------
# the temporal loss

def test_temporal_loss_is_a_mean_over_kept_pixels():
    for size in ((8, 8), (40, 64)):
        target = torch.full((1, 3, *size), 0.5)
        mask = torch.zeros(size)
        mask[:, : size[1] // 2] = 1
        x = target.clone()
        x[..., : size[1] // 2] += 0.1                                  # kept half: off by 0.1
        x[..., size[1] // 2:] = 1.0                                    # dropped half: far off, ignored
        term = TemporalLoss(target, mask, 7.0)
        assert term.name == "temporal" and term.weight == 7.0
        assert float(term.loss(x)) == pytest.approx(0.01, rel=1e-4)    # same at every size
        assert float(term.loss(target)) == 0.0
    # a coarse level (half size) compares with the target and the mask at its own size
    coarse = torch.full((1, 3, 20, 32), 0.6)
    assert float(TemporalLoss(torch.full((1, 3, 40, 64), 0.5), torch.ones(40, 64), 1.0).loss(coarse)) == \
        pytest.approx(0.01, rel=1e-3)
    assert float(TemporalLoss(target, torch.zeros(40, 64), 1.0).loss(x)) == 0.0


def test_frames_must_share_one_size(vgg, starry64, cat64):
    with pytest.raises(nst_core.ImageError, match="differ in size"):
        stylize_frames([cat64, cat64[:, :40]], starry64, vgg=vgg, steps=1)
    with pytest.raises(nst_core.OptionError, match="temporal_weight"):
        stylize_frames([cat64], starry64, vgg=vgg, steps=1, temporal_weight=-1)


# ----------------------------------------------------------------------------------------------
# the must-show

def _style_losses(vgg, video: torch.Tensor, style_image) -> list[float]:
    """Each frame's style loss (the engine's Gram term, before β) against the run's style target."""
    objective = Objective(vgg, None, nst_core.StyleTarget(vgg, [style_image]), 0.0, (H, W))
    return [float(objective(frame.permute(2, 0, 1)[None])[1]["style"]) for frame in video]


def _save_strip(rows: list[torch.Tensor]) -> None:
    strip = torch.cat([torch.cat(list(row), dim=1) for row in rows], dim=0)
    image = nst_core.to_pil(strip[None])
    image.resize((image.width * 3, image.height * 3)).save(STRIP)


@pytest.mark.slow
def test_temporal_loss_halves_the_flicker_at_the_same_style_loss(clip, vgg, starry64):
    seen = []
    t0 = time.perf_counter()
    independent = stylize_frames(clip, starry64, vgg=vgg, steps=STEPS, max_size=None, temporal_weight=0)
    t1 = time.perf_counter()
    temporal = stylize_frames(clip, starry64, vgg=vgg, steps=STEPS, max_size=None,
                              temporal_weight=DEFAULT_TEMPORAL_WEIGHT,
                              callback=lambda p: seen.append((p.step, p.total, p.frame)))
    t2 = time.perf_counter()
    _save_strip([clip, independent.image, temporal.image])
    assert independent.image.shape == temporal.image.shape == (FRAMES, H, W, 3)

    flicker_independent, flicker_temporal = shifted_difference(independent.image), shifted_difference(temporal.image)
    measured_independent = warped_differences(independent.image, clip)
    measured_temporal = warped_differences(temporal.image, clip)
    style_independent = _style_losses(vgg, independent.image, starry64)
    style_temporal = _style_losses(vgg, temporal.image, starry64)
    ratios = [a / b for a, b in zip(style_temporal, style_independent)]
    print(f"\nwarped difference (true shift) independent {flicker_independent} temporal {flicker_temporal}"
          f"\nwarped difference (DIS flow)   independent {measured_independent} temporal {measured_temporal}"
          f"\nstyle loss ratios {ratios}\ntimes: independent {t1 - t0:.1f}s, temporal {t2 - t1:.1f}s; strip {STRIP}")

    # frame 0 is the same image both ways; every later pair flickers at least 50 % less
    assert torch.equal(independent.image[0], temporal.image[0])
    assert sum(flicker_temporal) <= 0.5 * sum(flicker_independent)
    assert sum(measured_temporal) <= 0.5 * sum(measured_independent)
    assert all(ratio <= 1.5 for ratio in ratios)

    # per-frame histories: the temporal term is recorded on frames 1.. only; progress over the whole clip
    assert len(temporal.histories) == FRAMES and all(len(h) == STEPS for h in temporal.histories)
    assert "temporal" not in temporal.histories[0][-1] and "temporal" in temporal.histories[1][-1]
    assert "temporal" not in independent.histories[1][-1]
    assert float(temporal.masks[0].sum()) == 0 and float(temporal.masks[1].mean()) > 0.8
    assert [step for step, _, _ in seen] == list(range(1, FRAMES * STEPS + 1))
    assert {total for _, total, _ in seen} == {FRAMES * STEPS}
    assert [frame for _, _, frame in seen[::STEPS]] == list(range(FRAMES))
    assert temporal.stopped is None and independent.stopped is None


def test_temporal_loss_lowers_the_flicker_of_a_tiny_clip(vgg, starry64):
    """The fast tier's check of the claim above: 3 frames of 48x32 px, 6 steps (measured: flicker 0.21x
    of the independent frames')."""
    tiny = pan_clip(example("content_chelsea.png", 96), 3, *SHIFT, size=(32, 48))
    runs = [stylize_frames(tiny, starry64, vgg=vgg, steps=6, max_size=None, temporal_weight=weight).image
            for weight in (0, DEFAULT_TEMPORAL_WEIGHT)]
    dx, dy = SHIFT
    flicker = [sum(float((v[t, :32 - dy, :48 - dx] - v[t - 1, dy:, dx:]).abs().mean()) for t in (1, 2))
               for v in runs]
    assert flicker[1] <= 0.5 * flicker[0], flicker


def test_a_stop_keeps_the_frames_already_done(clip, vgg, starry64):
    def stop_in_frame_one(progress):
        if progress.frame == 1 and progress.level_step == 2:
            progress.stop()
    result = stylize_frames(clip, starry64, vgg=vgg, steps=3, max_size=None, callback=stop_in_frame_one)
    assert result.stopped == "callback"
    assert result.image.shape[0] == 2 and len(result.frames) == 2
    assert len(result.histories[0]) == 3 and len(result.histories[1]) == 2


def test_every_frame_gets_the_first_frames_strength(clip, vgg, starry64):
    """Under weighting "relative" the strength's units are the photo's distances to the painting (1/d_l): measured
    on frame 0 and used for every frame (with and without chunks), not re-measured per frame, whose own d
    differs (here a clip that darkens)."""
    from nst_core.photo_distance import style_distance, style_units
    fading = torch.cat([clip[:1], clip[1:2] * 0.6, clip[2:3] * 0.3])
    target = nst_core.StyleTarget(vgg, [starry64])
    look = nst_core.DEFAULTS["look_size"]
    own = [tuple(1 / d for d in style_distance(vgg, nst_core.ContentTarget(vgg, fading[t:t + 1]), target, look))
           for t in range(3)]
    assert max(max(a / b, b / a) for a, b in zip(own[0], own[2])) > 1.2     # the frames' own units differ
    for chunk_frames in (0, 2):
        result = stylize_frames(fading, target, vgg=vgg, steps=1, max_size=None, temporal_weight=0,
                                chunk_frames=chunk_frames)
        assert [r.style_units for r in result.frames] == [(pytest.approx(own[0], rel=1e-5),)] * 3
    normalized = stylize_frames(fading, target, vgg=vgg, steps=1, max_size=None, temporal_weight=0,
                                weighting="normalized")
    assert all(r.style_units == () for r in normalized.frames)
    # a level larger than the look size: its own-size units are frame 0's too (nst_core.photo_distance)
    looked = stylize_frames(fading, target, vgg=vgg, steps=1, max_size=None, temporal_weight=0, look_size=48)
    first = looked.frames[0].plan.units
    assert first.levels and all(r.plan.units == first for r in looked.frames)
    level = looked.frames[2].plan.levels[-1].size
    frame2 = style_units(vgg, nst_core.ContentTarget(vgg, fading[2:3]), target, size=level)[0]
    assert max(max(a / b, b / a) for a, b in zip(first.at(level)[0], frame2)) > 1.2
