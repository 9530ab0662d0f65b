"""A recording as a video: panes side by side, scaled up crisply, at the pace it was played.

GIF is written with Pillow, MP4 with the ffmpeg that the imageio-ffmpeg wheel carries
(`pip install 'neuralplay[video]'`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.recording.format import Recording

GAP = 8


def compose(rec: Recording, render) -> list[np.ndarray]:
    """One RGB image per recorded step: the panes side by side."""
    panes = [rec.arrays[f"frame_{p}"] for p in rec.panes() if f"frame_{p}" in rec.arrays]
    if not panes:
        raise UserError(f"{rec.path} holds no frames to export")
    images = []
    for i in range(len(panes[0])):
        row = []
        for frames in panes:
            if row:
                row.append(np.zeros((row[0].shape[0], GAP, 3), np.uint8))
            row.append(render(frames[i]))
        images.append(np.concatenate(row, axis=1))
    return images


def paced(images: list[np.ndarray], t: np.ndarray, fps: float) -> list[np.ndarray]:
    """Resample steps to a fixed frame rate, each frame showing the step on screen at that time."""
    if len(images) < 2:
        return images
    times = np.arange(t[0], t[-1] + 1 / fps, 1 / fps)
    index = np.searchsorted(t, times, side="right") - 1
    return [images[i] for i in np.clip(index, 0, len(images) - 1)]


def export_video(rec: Recording, render, out: Path, fps: float = 20.0, scale: int = 1) -> int:
    """Write out.gif or out.mp4; returns the number of frames written."""
    frames = paced(compose(rec, render), rec.arrays["t"], fps)
    if scale > 1:
        frames = [np.repeat(np.repeat(f, scale, axis=0), scale, axis=1) for f in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        pics = [Image.fromarray(f) for f in frames]
        pics[0].save(out, save_all=True, append_images=pics[1:], duration=int(1000 / fps), loop=0)
    elif suffix == ".mp4":
        try:
            import imageio_ffmpeg
        except ImportError:
            raise UserError("MP4 export needs imageio-ffmpeg: `pip install 'neuralplay[video]'`, "
                            "or export a .gif") from None
        h, w = frames[0].shape[:2]
        pad_h, pad_w = h % 2, w % 2  # H.264 wants even sizes
        writer = imageio_ffmpeg.write_frames(str(out), (w + pad_w, h + pad_h), fps=fps,
                                             macro_block_size=1, quality=8)
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(np.pad(f, ((0, pad_h), (0, pad_w), (0, 0)))))
        writer.close()
    else:
        raise UserError(f"cannot write {out}: the video must end in .mp4 or .gif")
    return len(frames)
