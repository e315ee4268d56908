"""Films: a clip stylised as it streams (decode, paint, encode one frame at a time: memory does not grow with its length),
its sound kept, the style encoded once and the photo's feature statistics averaged across frames, so that one frame's
exposure does not make the painting pump. PyAV carries FFmpeg (H.264, AAC) in its wheel: no system ffmpeg needed."""
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import atomic_write
from .images import fit_size, to_tensor
from .picture import finished_picture, painting_size

VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".gif", ".avi", ".m4v"}
MAX_SECONDS = 30 * 60  # longer clips are refused: a 2-core CPU paints ~10 frames a second at 480p
STATS_SMOOTHING = 0.9  # each frame's feature statistics: this much of the running average, the rest its own
AUDIO_KEPT_AS_IS = {"aac", "mp3", "alac", "opus"}  # codecs an mp4 carries; others are re-encoded to AAC


class VideoInputError(ValueError):
    """The input is not a usable video; the message says why in one line."""


def is_video(path) -> bool:
    return isinstance(path, (str, Path)) and Path(path).suffix.lower() in VIDEO_SUFFIXES


def opened(path):
    """(container, its first video stream) or a VideoInputError line: missing, not a video, no picture, too long."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"video: file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise VideoInputError(f"video: not a video file FFmpeg can read ({err.__class__.__name__}): {path}") from None
    if not container.streams.video:
        container.close()
        raise VideoInputError(f"video: no picture in {path} (audio or data streams only)")
    seconds = (container.duration or 0) / 1_000_000
    if seconds > MAX_SECONDS:
        container.close()
        raise VideoInputError(f"video: {seconds / 60:.0f} minutes is longer than the {MAX_SECONDS // 60} minutes a run takes")
    return container, container.streams.video[0]


class FramePainter:
    """Paints one frame after another with one style: the style encoded once, the photo's statistics smoothed."""

    def __init__(self, stylizer, style_image: Image.Image, lambdas: torch.Tensor, strength: float, preserve_color: bool,
                 max_side: int, stroke_scale: float, variant: str):
        self.stylizer, self.lambdas, self.strength, self.preserve_color = stylizer, lambdas, strength, preserve_color
        self.max_side, self.stroke_scale, self.variant = max_side, stroke_scale, variant
        self.style = stylizer.encode_style(style_image, variant)
        self.stats = None

    @torch.no_grad()
    def __call__(self, frame: Image.Image) -> Image.Image:
        photo = fit_size(frame, self.max_side)
        encoding = self.stylizer.encode_content(painting_size(photo, self.stroke_scale), self.variant, cached=False)
        if self.stats is None:
            self.stats = encoding.stats
        else:
            self.stats = [tuple(STATS_SMOOTHING * old + (1 - STATS_SMOOTHING) * new for old, new in zip(before, now))
                          for before, now in zip(self.stats, encoding.stats)]
        out = self.stylizer.stylize_tensor(dataclasses.replace(encoding, stats=self.stats), self.style, self.lambdas,
                                           self.strength, self.variant)
        return finished_picture(out, to_tensor(photo), self.preserve_color, with_detail=self.stroke_scale > 1)


def painted_frames(painter: FramePainter, path) -> Iterator[Image.Image]:
    """The clip's frames, painted, as they are decoded (no sound)."""
    container, stream = opened(path)
    with container:
        for frame in container.decode(stream):
            yield painter(frame.to_image())


def write_video(painter: FramePainter, source, out_path: Path, progress=None) -> tuple[int, float]:
    """The painted clip as H.264 mp4 at `out_path` (written beside it, then renamed), at the source's frame rate, with its
    sound. progress(frames done, frames in all or None). -> (frames, frames per second, whether sound was kept)."""
    import av

    container, stream = opened(source)
    audio = container.streams.audio[0] if container.streams.audio else None
    total = stream.frames or None
    rate = stream.average_rate or stream.guessed_rate or 25
    kept_as_is = audio is not None and audio.codec_context.name in AUDIO_KEPT_AS_IS
    done = [0]

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as out:
            size = fit_size(Image.new("RGB", (stream.width, stream.height)), painter.max_side).size
            video = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
            video.width, video.height, video.pix_fmt = size[0] // 2 * 2, size[1] // 2 * 2, "yuv420p"  # H.264 420: even sides
            sound = None
            if audio is not None:
                sound = out.add_stream_from_template(audio) if kept_as_is else out.add_stream("aac", rate=audio.rate or 44100)
            for packet in container.demux(*(s for s in (stream, audio) if s is not None)):
                if packet.stream is stream:
                    for frame in packet.decode():
                        rgb = np.asarray(painter(frame.to_image()))[: video.height, : video.width]
                        out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
                        done[0] += 1
                        if progress is not None:
                            progress(done[0], total)
                elif packet.dts is not None:
                    if kept_as_is:
                        packet.stream = sound
                        out.mux(packet)
                    else:
                        for samples in packet.decode():
                            samples.pts = None
                            out.mux(sound.encode(samples))
            if not done[0]:
                raise VideoInputError(f"video: no frame could be decoded from {source}")
            out.mux(video.encode())
            if sound is not None and not kept_as_is:
                out.mux(sound.encode())

    try:
        with container:
            atomic_write(Path(out_path), encode)
    except av.error.FFmpegError as err:
        raise VideoInputError(f"video: {source} is broken or truncated ({err.__class__.__name__}: {err})") from None
    return done[0], float(rate), audio is not None


def stylize_video(stylizer, content, style, output=None, lambdas: dict | None = None, strength: float = 1.0,
                  preserve_color: bool = False, max_side: int = 512, stroke_scale: float = 1.0, variant: str | None = None,
                  progress=None):
    """Stylizer.stylize_video: `content` a clip file, `style` any image. With `output` (an .mp4 path) the painted clip is
    written there, sound kept -> (frames, frames per second, sound kept); without, an iterator of the painted frames."""
    from .checks import STROKE_SCALES, checked_flag, checked_max_side, checked_number

    if output is not None and Path(output).suffix.lower() != ".mp4":
        raise ValueError(f"a stylised video is written as H.264 .mp4, not {Path(output).suffix or 'a name without suffix'}")
    variant = stylizer.checked_variant(variant)
    opened(content)[0].close()  # a bad clip is one line before any work (the painting's encoding included)
    painter = FramePainter(stylizer, stylizer.fitted(style, "style", stylizer.style_max_side), stylizer.resolve_lambdas(lambdas),
                           checked_number(strength, "strength", 0.0, 1.0), checked_flag(preserve_color, "preserve_color"),
                           checked_max_side(max_side), checked_number(stroke_scale, "stroke scale", *STROKE_SCALES), variant)
    if output is None:
        return painted_frames(painter, content)
    return write_video(painter, content, Path(output), progress)
