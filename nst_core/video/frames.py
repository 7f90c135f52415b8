"""Video: stylize a clip frame by frame with Ruder et al. 2016's temporal consistency.

Frame 0 is stylized as a single image. Frame t starts from frame t−1's result warped onto it by the
optical flow of the content frames (init "image"; pixels the flow does not keep start from the content)
and adds the short-term temporal loss on the pixels the forward-backward check keeps. Later frames run at
full size (a one-level plan): coarse-to-fine would shrink the warped start and blur away exactly what it
carries. Every frame uses frame 0's relative unit (its plan's photo distance), so the strength holds.
temporal_weight = 0 stylizes every frame on its own (no flow, the same start as frame 0): the flickering
baseline.

Pixels the flow drops start from the content, not the warped border: a border fill leaves streaks that
the temporal term then keeps (measurements: nst_core/bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ..api import _AS_OPTIONS, OPTION_NAMES, _run_options, fit, optimize, prepare
from ..errors import ImageError
from ..image import as_bhwc, to_nchw
from ..loader import load_vgg
from ..loop import Result
from ..options import RunOptions
from ..settings import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OptionError
from ..targets import ContentTarget, StyleTarget
from .flow import flow_pair, require_opencv, warp
from .chunks import Chunk, align, owners, plan_chunks, stitch
from .occlusion import keep_mask
from .options import CHUNK_FRAMES, TEMPORAL_WEIGHT
from .temporal import TemporalLoss


@dataclass
class FramesResult:
    """A stylized clip: `image` [T,H,W,3] (the frames done, all of them unless stopped early), one engine
    Result per frame, the kept-pixel masks [T,H,W] (frame 0 and independent frames: zeros), why it stopped
    early (None or "callback") and warnings (prefixed with the frame)."""
    image: torch.Tensor
    frames: list[Result]
    masks: torch.Tensor
    stopped: str | None = None
    warnings: list[str] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)     # the chunks it ran in (empty: one run in order)

    @property
    def histories(self) -> list[list[dict]]:
        """Per-frame histories (each as Result.history: step, level, total, content, style, tv, temporal)."""
        return [result.history for result in self.frames]

    @property
    def history(self) -> list[dict]:
        """All frames' histories in one list, each record tagged with its "frame"."""
        return [{"frame": t, **record} for t, result in enumerate(self.frames) for record in result.history]

    @property
    def plan(self):
        """The plan of frame 0 (later frames run its final size only)."""
        return self.frames[0].plan if self.frames else None


class ClipProgress:
    """The engine's Progress of one frame, seen as a step of the whole clip: step / total count all frames'
    steps; `frame` / `frames` say which frame runs. Everything else (level, image, losses) is the frame's."""

    def __init__(self, inner, frame: int, frames: int, steps: int, position: int | None = None):
        self._inner = inner
        self.frame, self.frames = frame, frames
        # position: which frame of the run this is (chunked runs stylize shared frames twice)
        self.step = (frame if position is None else position) * steps + inner.step
        self.total = frames * steps

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def stop(self) -> None:
        self._inner.stop()


def _temporal_unit(style: StyleTarget) -> float:
    """What the temporal weight is relative to: the style weight β (1 when β = 0). The style term is what
    pulls a frame away from its warped start, and users set β over decades (5e6 at 512 px, less at small
    sizes); relative to it, one temporal weight holds the frames the same whatever β is chosen."""
    return style.weight if style.weight > 0 else 1.0


def _clip_unit(vgg, clip: torch.Tensor, target: StyleTarget, content_layers, options: RunOptions):
    """The relative weighting's units of the clip (1/d, d frame 0's distance to the painting at the look
    size and at each larger level's size: frame 0's plan, nst_core.api.prepare), so that every frame and
    every chunk gets one strength, not one that moves with each frame's own distance. None under another
    weighting (nothing to hold)."""
    first = ContentTarget(vgg, clip[:1], content_layers, options.content_weight)
    plan = prepare(vgg, first, target, options, size=tuple(clip.shape[1:3]))[3]
    return plan.units if plan.weighting == "relative" else None


def as_frames(frames) -> torch.Tensor:
    """An IMAGE batch [T,H,W,3] or a list of images (each one image or a batch) -> [T,H,W,3], one size."""
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ImageError("no frames given")
        batches = [as_bhwc(item) for item in frames]
        sizes = list(dict.fromkeys(tuple(b.shape[1:3]) for b in batches))
        if len(sizes) > 1:
            raise ImageError("the frames differ in size (" + ", ".join(f"{w}x{h}" for h, w in sizes)
                             + "); give frames of one size")
        return torch.cat([b.cpu() for b in batches])
    batch = as_bhwc(frames).cpu()
    return batch


@dataclass
class ChunkJob:
    """One chunk's work, picklable (it goes to another process or machine as it is): its frames, the
    network and style target, and the clip loop's options."""
    chunk: Chunk
    frames: torch.Tensor
    vgg: object
    style: StyleTarget
    options: dict
    first: tuple | None = None        # its first frame's (Result, flow mask), from the keyframe pass


def run_chunk(job: ChunkJob, callback: Callable | None = None) -> FramesResult:
    """Stylize one chunk (what a chunk_map calls, in this process or a worker): the clip loop on its frames,
    from its keyframe."""
    return _run_clip(job.frames, job.vgg, job.style, callback=callback, first=job.first, **job.options)


def stylize_frames(frames, style, *, options: RunOptions | None = None,
                   temporal_weight: float = TEMPORAL_WEIGHT.default, vgg=None,
                   content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                   style_layer_weights=None, style_blend: Sequence[float] | None = None,
                   max_size: int | None = _AS_OPTIONS, chunk_frames: int = CHUNK_FRAMES.default,
                   chunk_map: Callable | None = None, callback: Callable | None = None,
                   **keywords) -> FramesResult:
    """Stylize the frames of a clip with temporal consistency; `options.steps` optimizer steps per frame.

    frames: an IMAGE batch [T,H,W,3] or a list of images of one size (shrunk to `max_size` as `stylize`
    does). style: a style image, a list of them, or a prebuilt StyleTarget (then the style_* options are
    its own). `options` (nst_core.options.RunOptions) and keyword options as `stylize`'s (steps,
    style_weight, weighting, ...); `init` and `init_image` apply to frame 0 and to independent frames. The
    callback sees a ClipProgress: step / total over the whole clip, and `frame`.

    chunk_frames > 0 cuts the clip into chunks of that many frames, each next one starting on the last
    frame of the one before (chunks.py). First, here, the keyframe pass stylizes each chunk's first frame in
    order, each carried from the one before along the chained flows (one frame per chunk); then every chunk
    runs from its keyframe on its own, and each is aligned to the chunk before at their shared frame (the
    offset between them carried along the flow) and joined there. The chunks run through
    `chunk_map(run_chunk, jobs)`, any map-like callable that returns the results in order: None runs them
    here one after the other (with the callback; step / total count the keyframes once); `executor.map` of
    a concurrent.futures pool (see chunk_processes) or a Ray wrapper run them in parallel (no callback
    there). The frames are the same whichever map ran them, at equal torch threads. A stop in the keyframe
    pass keeps frame 0 only (the other keyframes are not next to it).
    """
    temporal_weight = TEMPORAL_WEIGHT.check(temporal_weight)
    chosen = {name: value for name, value in keywords.items() if name in OPTION_NAMES}
    rest = {name: value for name, value in keywords.items() if name not in OPTION_NAMES}
    if max_size is not _AS_OPTIONS and max_size is not None:
        chosen["max_size"] = max_size
    options = _run_options(options, chosen)
    unknown = sorted(set(rest) - {"init_image"})
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    steps = options.steps
    clip = as_frames(frames)
    if isinstance(style, StyleTarget):
        vgg = vgg or style.vgg
        if style.vgg is not vgg:
            raise OptionError("style", "the style target was built with another network than `vgg`; build it "
                                       "with the same one")
        target = style
    else:
        vgg = vgg or load_vgg()
        target = StyleTarget(vgg, style if isinstance(style, (list, tuple)) else [style], style_layers,
                             style_layer_weights, options.style_weight, style_blend, options.style_scale,
                             style_loss=options.style_loss)
    side = None if max_size is None else options.max_size
    clip = torch.cat([fit(clip[t:t + 1], side) for t in range(clip.shape[0])])
    chunks = plan_chunks(clip.shape[0], chunk_frames)
    if temporal_weight > 0 and clip.shape[0] > 1:
        require_opencv()                 # a missing OpenCV is reported before any frame is computed
    loop = dict(temporal_weight=temporal_weight, content_layers=content_layers, options=options,
                style_units=_clip_unit(vgg, clip, target, content_layers, options), **rest)
    if len(chunks) == 1:
        return _run_clip(clip, vgg, target, callback=callback, **loop)
    if chunk_map is not None and callback is not None:
        raise OptionError("callback", "a callback cannot follow chunks that run through a chunk_map (they may "
                                      "run in other processes); run without chunk_map for progress")
    # with the temporal loss every chunk starts from its keyframe, carried from the chunk before (serial,
    # one frame per chunk); without it the frames are independent and so are the chunks
    keyed = temporal_weight > 0
    total = len(chunks) + sum(chunk.frames - 1 for chunk in chunks) if keyed else sum(c.frames for c in chunks)
    keys: list = [None] * len(chunks)
    if keyed:
        report = None if callback is None else \
            (lambda p, k, t: callback(ClipProgress(p, t, total, steps, position=k)))
        keys = _keyframes(clip, vgg, target, chunks, callback=report, **loop)
        if keys[-1][0].stopped == "callback":     # stopped in the keyframe pass: only frame 0 is in order
            first = keys[0][0]
            return FramesResult(first.image, [first], torch.zeros(1, *clip.shape[1:3]), "callback", first.warnings)
    jobs = [ChunkJob(chunk, clip[chunk.start:chunk.stop], vgg, target, loop, key)
            for chunk, key in zip(chunks, keys)]
    if chunk_map is None:
        pieces = _run_here(jobs, steps, total, len(chunks) if keyed else 0, callback)
    else:
        pieces = list(chunk_map(run_chunk, jobs))
        if len(pieces) != len(jobs):
            raise OptionError("chunk_map", f"returned {len(pieces)} results for {len(jobs)} chunks")
    return _stitched(pieces, chunks, clip, aligned=keyed)


def _run_here(jobs: list[ChunkJob], steps: int, total: int, done: int,
              callback: Callable | None) -> list[FramesResult]:
    """The chunks one after the other in this process; progress goes on from the `done` frames of the
    keyframe pass to `total` frames (keyframes are not run again); a stop ends the run with the chunks (and
    frames) done so far."""
    pieces: list[FramesResult] = []
    for job in jobs:
        report = None
        skipped = 1 if job.first is not None else 0
        if callback is not None:
            def report(p, offset=done - skipped, start=job.chunk.start):
                callback(ClipProgress(p._inner, start + p.frame, total, steps, position=offset + p.frame))
        pieces.append(run_chunk(job, callback=report))
        done += job.chunk.frames - skipped
        if pieces[-1].stopped:
            break
    return pieces


def _stitched(pieces: list[FramesResult], chunks: list[Chunk], clip: torch.Tensor, aligned: bool) -> FramesResult:
    """One FramesResult of the chunks, each aligned to the one before at their shared frame (chunks.align;
    not for independent frames) and joined there; per frame the Result and flow mask of the chunk it comes
    from; warnings renamed to clip frames."""
    images = [pieces[0].image]
    for k in range(1, len(pieces)):
        own = pieces[k].image
        start = chunks[k].start
        images.append(align(own, images[k - 1][start - chunks[k - 1].start], clip[start:start + own.shape[0]])
                      if aligned else own)
    image = stitch(images, chunks[:len(pieces)])
    owner = owners(chunks[:len(pieces)], [piece.image.shape[0] for piece in pieces])
    frames = [pieces[k].frames[j] for k, j in owner]
    masks = torch.stack([pieces[k].masks[j] for k, j in owner])
    notes = [f"chunk {chunk.index} (frames {chunk.start}-{chunk.stop - 1}), {message}"
             for piece, chunk in zip(pieces, chunks) for message in piece.warnings]
    stopped = next((piece.stopped for piece in pieces if piece.stopped), None)
    return FramesResult(image, frames, masks, stopped, notes, chunks=list(chunks[:len(pieces)]))


def _carried(previous: torch.Tensor, path: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A result of frame path[0] ([1,H,W,3]) carried along the flows of consecutive content frames `path`
    [n,H,W,3] onto the last one: (the warped image [1,3,H,W], the mask [H,W] of the pixels every step's
    forward-backward check kept). One step is Ruder's warp of the previous result."""
    image = to_nchw(previous)
    mask = torch.ones(path.shape[1:3])
    for i in range(1, path.shape[0]):
        forward, backward = flow_pair(path[i - 1], path[i])
        image = warp(image, backward)
        followed = warp(mask.reshape(1, 1, *mask.shape), backward)[0, 0] >= 0.999
        mask = keep_mask(forward, backward) * followed.float()
    return image, mask


def _follow(vgg, content: ContentTarget, target: StyleTarget, frame: torch.Tensor, carried: torch.Tensor,
            mask: torch.Tensor, temporal_weight: float, report, options: RunOptions, style_units) -> Result:
    """Stylize `frame` ([1,H,W,3]) from a result carried onto it, held there by the temporal loss."""
    held = mask.reshape(1, 1, *mask.shape)
    # where the flow cannot speak for a pixel (it enters the view, or was hidden) the warp only repeats the
    # border into streaks that the temporal term would then keep: start there from the content
    start = held * carried + (1 - held) * to_nchw(frame)
    term = TemporalLoss(start, mask, temporal_weight * _temporal_unit(target))
    return optimize(vgg, content, target, options=options.replace(init="image", coarse_to_fine=False),
                    init_image=start.permute(0, 2, 3, 1).clamp(0, 1), callback=report, pixel_terms=[term],
                    style_units=style_units)


def _keyframes(clip: torch.Tensor, vgg, target: StyleTarget, chunks: list[Chunk], *, temporal_weight: float,
               content_layers, options: RunOptions, style_units, init_image=None,
               callback: Callable | None = None) -> list[tuple[Result, torch.Tensor]]:
    """The first frame of every chunk, in order, each carried from the one before (flows chained over the
    frames between): every chunk then starts in the look the clip already has, so neighbouring chunks differ
    by their drift over a chunk, not by two unrelated stylizations. Returns (Result, mask) per chunk; a stop
    ends the list early."""
    keys: list[tuple[Result, torch.Tensor]] = []
    for k, chunk in enumerate(chunks):
        frame = clip[chunk.start:chunk.start + 1]
        content = ContentTarget(vgg, frame, content_layers, options.content_weight)
        report = None if callback is None else (lambda p, k=k, t=chunk.start: callback(p, k, t))
        if k == 0:
            result = optimize(vgg, content, target, options=options, init_image=init_image, callback=report,
                              style_units=style_units)
            mask = torch.zeros(clip.shape[1:3])
        else:
            carried, mask = _carried(keys[-1][0].image, clip[chunks[k - 1].start:chunk.start + 1])
            result = _follow(vgg, content, target, frame, carried, mask, temporal_weight, report, options,
                             style_units)
        keys.append((result, mask))
        if result.stopped == "callback":
            break
    return keys


def _run_clip(clip: torch.Tensor, vgg, target: StyleTarget, *, temporal_weight: float, content_layers,
              options: RunOptions, style_units, init_image=None, callback: Callable | None = None,
              first: tuple[Result, torch.Tensor] | None = None) -> FramesResult:
    """The clip loop (Ruder et al.): frame 0 on its own (or `first`, its result and mask computed already),
    then each frame from the previous result warped onto it."""
    count = clip.shape[0]
    use_flow = temporal_weight > 0 and count > 1
    results: list[Result] = []
    masks = torch.zeros(clip.shape[:3])
    notes: list[str] = []
    stopped = None
    steps = options.steps
    for t in range(count):
        content = ContentTarget(vgg, clip[t:t + 1], content_layers, options.content_weight)
        report = None if callback is None else \
            (lambda p, t=t: callback(ClipProgress(p, t, count, steps)))
        if t == 0 and first is not None:
            result, masks[0] = first
        elif t == 0 or not use_flow:
            result = optimize(vgg, content, target, options=options, init_image=init_image, callback=report,
                              style_units=style_units)
        else:
            carried, masks[t] = _carried(results[-1].image, clip[t - 1:t + 1])
            result = _follow(vgg, content, target, clip[t:t + 1], carried, masks[t], temporal_weight, report,
                             options, style_units)
        results.append(result)
        notes += [(t, message) for message in result.warnings]
        if result.stopped == "callback":
            stopped = "callback"
            break
    image = torch.cat([result.image for result in results])
    return FramesResult(image, results, masks[:len(results)], stopped, frame_notes(notes))


def frame_notes(notes: list[tuple[int, str]]) -> list[str]:
    """Each warning once, with the frames that gave it: 'frames 0-8: ...' rather than nine times the same
    line (an older workflow's paper β warns on every frame)."""
    frames: dict[str, list[int]] = {}
    for t, message in notes:
        frames.setdefault(message, []).append(t)
    return [f"{_frame_ranges(ts)}: {message}" for message, ts in frames.items()]


def _frame_ranges(ts: list[int]) -> str:
    """[0, 1, 2, 5] -> 'frames 0-2, 5'; [3] -> 'frame 3'."""
    if len(ts) == 1:
        return f"frame {ts[0]}"
    runs, start = [], ts[0]
    for a, b in zip(ts, ts[1:] + [None]):
        if b != a + 1:
            runs.append(f"{start}-{a}" if a != start else f"{a}")
            start = b
    return "frames " + ", ".join(runs)


__all__ = ["ChunkJob", "ClipProgress", "FramesResult", "as_frames", "run_chunk", "stylize_frames"]
