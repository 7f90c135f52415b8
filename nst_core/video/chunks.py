"""Cutting a clip into chunks that can be stylized in parallel, and stitching them back without a jump.

Chunk k covers frames [start, stop); neighbours share one frame (chunk k starts on chunk k-1's last
frame). frames.py first stylizes every chunk's first frame in order, each carried from the one before
(the keyframes, one frame per chunk), then each chunk runs on its own from its keyframe, on any executor.

Stitching: chunk k's result at the shared frame differs from chunk k-1's (each ran into its own local
optimum), and the temporal loss keeps each chunk in its own look, so joining them as they are jumps. So
chunk k is aligned (align): the offset between chunk k-1's frame and chunk k's at the shared frame rides
along the optical flow through chunk k, which then shows chunk k-1's look with chunk k's own
frame-to-frame changes; pixels the flow drops (entering the view, disoccluded) are chunk k's own.

One shared frame is enough: any path between two looks over n frame steps moves by their difference / n
per step, so a crossfade or re-optimizing more shared frames only spreads the jump (measurements:
nst_core/bench/README.md).

Pure tensor work and flow here (no network): the clip loop that runs a chunk is frames.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..settings import OptionError
from .flow import flow_pair, warp
from .occlusion import keep_mask
from .options import CHUNK_FRAMES


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of the clip; a chunk after the first starts on the last frame of the one before."""
    index: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start


def plan_chunks(count: int, chunk_frames: int = CHUNK_FRAMES.default) -> list[Chunk]:
    """The chunks of a clip of `count` frames: `chunk_frames` each (the last may be shorter), each next one
    starting on the last frame of the one before. chunk_frames 0, or a clip no longer: one chunk."""
    chunk_frames = CHUNK_FRAMES.check(chunk_frames)
    if chunk_frames == 1:
        raise OptionError("chunk_frames", "a chunk shares its first frame with the chunk before, so it needs at "
                                          "least 2 frames (0 = no chunks)")
    if chunk_frames == 0 or count <= chunk_frames:
        return [Chunk(0, 0, count)]
    return [Chunk(index, start, min(start + chunk_frames, count))
            for index, start in enumerate(range(0, count - 1, chunk_frames - 1))]


def align(piece: torch.Tensor, anchor: torch.Tensor, contents: torch.Tensor) -> torch.Tensor:
    """A chunk's frames moved into the look the clip already has: piece [n,H,W,3] (the chunk's own result),
    anchor [H,W,3] (the clip's frame where the chunk starts, from the chunk before), contents [n,H,W,3]
    (its content frames). The offset anchor − piece[0] rides along the optical flow from frame to frame
    (dropped where the forward-backward check drops a pixel), so frame j is piece[j] + that offset."""
    offset = (anchor.float().cpu() - piece[0].float().cpu()).permute(2, 0, 1).unsqueeze(0)
    frames = [anchor.float().cpu()]
    for j in range(1, piece.shape[0]):
        forward, backward = flow_pair(contents[j - 1], contents[j])
        offset = warp(offset, backward) * keep_mask(forward, backward)
        frames.append((piece[j].float().cpu() + offset[0].permute(1, 2, 0)).clamp(0, 1))
    return torch.stack(frames)


def owners(chunks: Sequence[Chunk], lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Per frame of the stitched clip, (chunk index, frame within it) of the chunk it comes from: the
    latest chunk that started before it and reached it (lengths[k]: frames chunk k gave back; a stopped
    run gives fewer); the shared frame is the earlier chunk's."""
    length = max(chunk.start + n for chunk, n in zip(chunks, lengths))
    owner: list[tuple[int, int]] = []
    for t in range(length):
        reached = [(chunk.index, t - chunk.start) for chunk, n in zip(chunks, lengths)
                   if chunk.start <= t < chunk.start + n and (chunk.start < t or chunk.index == 0)]
        owner.append(reached[-1] if reached else
                     next((c.index, 0) for c in chunks if c.start == t))
    return owner


def stitch(pieces: Sequence[torch.Tensor], chunks: Sequence[Chunk]) -> torch.Tensor:
    """The clip [T,H,W,3] from each chunk's (aligned) frames, pieces[k]: [n,H,W,3], n <= chunk k's frames
    when a run stopped early; each frame from the chunk `owners` names."""
    if not pieces:
        raise ValueError("no chunks to stitch")
    owner = owners(chunks, [piece.shape[0] for piece in pieces])
    return torch.stack([pieces[k][j].float().cpu() for k, j in owner])


def border_pairs(chunks: Sequence[Chunk]) -> list[int]:
    """The frame pairs (t-1, t), named by t, next to a change of chunk: into the shared frame and out of
    it into the next chunk's own frames. The others are in-chunk pairs."""
    return sorted({t for chunk in chunks[1:] for t in (chunk.start, chunk.start + 1) if t < chunk.stop})


__all__ = ["Chunk", "align", "border_pairs", "owners", "plan_chunks", "stitch"]
