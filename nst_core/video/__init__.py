"""Video: stylize a clip's frames with temporal consistency (Ruder et al. 2016).

    result = nst_core.stylize_frames(frames, style_image, vgg=vgg, steps=100)   # frames [T,H,W,3]
    result.image                                                              # [T,H,W,3]

flow (OpenCV DIS optical flow, warping) -> occlusion (forward-backward mask) -> temporal (the loss term)
-> frames (the clip loop; chunks cut a long clip into chunks that run in parallel on any map,
parallel.chunk_processes for local processes, and align them where they meet). consistency measures the flicker of a result. OpenCV is the optional
`video` extra: pip install .[video].
"""

from .consistency import warped_differences
from .flow import INSTALL_HINT, VideoDependencyError, available, flow_pair, optical_flow, warp
from .chunks import Chunk, border_pairs, plan_chunks, stitch
from .frames import ChunkJob, ClipProgress, FramesResult, as_frames, run_chunk, stylize_frames
from .occlusion import keep_mask
from .synthetic import pan_clip
from .options import CHUNK_FRAMES, DEFAULT_TEMPORAL_WEIGHT, TEMPORAL_WEIGHT
from .parallel import chunk_processes
from .temporal import TemporalLoss

__all__ = ["CHUNK_FRAMES", "Chunk", "ChunkJob", "ClipProgress", "DEFAULT_TEMPORAL_WEIGHT", "FramesResult", "INSTALL_HINT", "TEMPORAL_WEIGHT",
           "TemporalLoss", "VideoDependencyError", "as_frames", "available", "border_pairs", "chunk_processes", "flow_pair", "keep_mask",
           "optical_flow", "pan_clip", "plan_chunks", "run_chunk", "stitch", "stylize_frames", "warp", "warped_differences"]
