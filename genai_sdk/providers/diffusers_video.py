"""Video from diffusers pipelines: the frame counts and sizes their VAEs can make, and the frames as H.264 MP4."""

from __future__ import annotations

from typing import Any

from .._media import Video


def frame_count(pipeline: Any, wanted: int, fps: int) -> tuple[int, list[str]]:
    """The frame count nearest to ``wanted`` that the pipeline's video VAE can make.

    VAEs that compress time by a factor t (CogVideoX, LTX, Wan) decode k latent frames into t*(k-1)+1 frames; asked
    for another count they round it down on their own, so the SDK rounds to the nearest one and says so.
    """
    factor = getattr(pipeline, "vae_scale_factor_temporal", None) or getattr(pipeline, "vae_temporal_compression_ratio", None)
    if not isinstance(factor, int) or factor <= 1 or (wanted - 1) % factor == 0:
        return wanted, []
    frames = max(1, round((wanted - 1) / factor)) * factor + 1
    return frames, [
        f"this model makes {factor}k+1 frames: {frames} frames ({frames / fps:g} s at {fps} fps) were made "
        f"where {wanted} were asked for"
    ]


def spatial_multiple(pipeline: Any) -> int:
    """What width and height must be multiples of: the VAE's downscaling times the denoiser's patch size."""
    scale = (getattr(pipeline, "vae_scale_factor_spatial", None) or getattr(pipeline, "vae_spatial_compression_ratio", None)
             or getattr(pipeline, "vae_scale_factor", None) or 8)
    patch = getattr(getattr(getattr(pipeline, "transformer", None), "config", None), "patch_size", None) or 1
    if isinstance(patch, (tuple, list)):
        patch = patch[-1]
    return int(scale) * int(patch)


def frames_of(frames: Any) -> Any:
    """Frames of the first video as a uint8 array (frames, height, width, 3), whatever form the pipeline gave."""
    import numpy as np

    first = frames[0] if isinstance(frames, (list, tuple)) or getattr(frames, "ndim", 0) == 5 else frames
    if isinstance(first, (list, tuple)):  # PIL images
        first = np.stack([np.asarray(f.convert("RGB")) for f in first])
    array = np.asarray(first)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return array


def encode_mp4(frames: Any, fps: int) -> Video:
    """H.264 MP4 (yuv420p, so every player plays it) from uint8 frames, with PyAV's bundled encoder."""
    import io

    import av

    count, height, width = frames.shape[:3]
    even_w, even_h = width + width % 2, height + height % 2  # yuv420p needs even edges
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
        # Macroblock-tree rate control works in floating point that some libraries loaded beside it (with
        # flush-to-zero set) make vary from run to run; without it, the same frames always give the same bytes.
        stream.options = {"crf": "18", "preset": "medium", "x264-params": "mbtree=0"}
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(frames[index], format="rgb24")
            if (even_w, even_h) != (width, height):
                frame = frame.reformat(width=even_w, height=even_h)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Video(buffer.getvalue(), "video/mp4", width, height, float(fps), count / fps)


__all__ = ["encode_mp4", "frame_count", "frames_of", "spatial_multiple"]
