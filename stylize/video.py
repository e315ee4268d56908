"""Films: a clip stylised as it streams (decode, paint, encode one frame at a time, each in a thread of its own: memory
does not grow with its length), its sound kept. Steady: the style is encoded once, the photo's feature statistics are
averaged across frames, and each painted frame keeps most of the one before it, moved along the photo's optical flow,
wherever that still matches the photo (bench/results/video.md). PyAV carries FFmpeg (H.264, AAC) in its wheel and
OpenCV's headless wheel the flow: no system ffmpeg needed."""
import dataclasses
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import atomic_write
from .images import MAX_PIXELS, fit_scale
from .picture import finished_picture, painting_size

VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".gif", ".avi", ".m4v"}
MAX_SECONDS = 30 * 60  # longer clips are refused: a 2-core CPU paints ~10 frames a second at 480p
STATS_SMOOTHING = 0.9  # each frame's feature statistics: this much of the running average, the rest its own
# The share of the previous painted frame (moved along the flow) that a frame keeps where the photo still matches it:
# flicker on a 4 px pan 7.0 -> 0.2 grey levels with the fast model; 0 paints frame by frame.
STEADINESS = 0.95
FLOW_TOLERANCE = 60.0  # grey levels off between the flow-moved previous photo and this one: the fresh painting alone
AUDIO_KEPT_AS_IS = {"aac", "mp3", "alac", "opus"}  # codecs an mp4 carries; others are re-encoded to AAC
AHEAD = 4  # frames decoded ahead of the painter, and painted frames waiting for the encoder


class VideoInputError(ValueError):
    """The input is not a usable video; the message says why in one line."""


def is_video(path) -> bool:
    return isinstance(path, (str, Path)) and Path(path).suffix.lower() in VIDEO_SUFFIXES


def opened(path, max_seconds: float = MAX_SECONDS):
    """(container, its first video stream) or a VideoInputError line: missing, not a video, no picture, too long or large."""
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
    stream, seconds = container.streams.video[0], (container.duration or 0) / 1_000_000
    if seconds > max_seconds or stream.width * stream.height > MAX_PIXELS:
        container.close()
        raise VideoInputError(f"video: {seconds:.0f} s of {stream.width}×{stream.height} px is more than a run here takes "
                              f"({max_seconds:g} s, {MAX_PIXELS / 1e6:.0f} MP a frame)")
    stream.thread_type = "AUTO"  # FFmpeg decodes on several threads
    return container, stream


def rotation(path, max_seconds: float = MAX_SECONDS) -> int:
    """Degrees counter-clockwise a player turns the clip's frames (a phone held upright records them sideways)."""
    container, stream = opened(path, max_seconds)
    with container:
        for frame in container.decode(stream):
            return round(frame.rotation) % 360
    return 0


def painted_size(stream, max_side: int, degrees: int) -> tuple[int, int]:
    """The frames' size as painted and encoded: upright, the long side at most max_side (the short at least MIN_SIDE),
    even (H.264's 4:2:0 needs it)."""
    width, height = (stream.height, stream.width) if degrees % 180 else (stream.width, stream.height)
    scale = fit_scale(width, height, max_side)
    return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)


def upright_frames(container, stream, size: tuple[int, int], packets: Iterator | None = None) -> Iterator:
    """The clip's frames as upright RGB arrays of `size` (w, h); with `packets` (a demux of several streams), the other
    streams' packets pass through in order as they are."""
    for packet in packets if packets is not None else container.demux(stream):
        if packet.stream is not stream:
            yield packet
            continue
        for frame in packet.decode():
            turns = round(frame.rotation) % 360 // 90
            width, height = (size[1], size[0]) if turns % 2 else size
            rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
            yield np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class Steadier:
    """Each painted frame blended with the one before it, moved along the photo's optical flow (OpenCV's DIS, held to the
    camera's motion where it agrees), where the moved previous photo still matches this one; new, uncovered or changed
    parts take the fresh painting."""

    def __init__(self, steadiness: float):
        import cv2

        self.cv2, self.steadiness, self.previous, self.grid = cv2, steadiness, None, None
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, photo: np.ndarray, painting: np.ndarray) -> np.ndarray:
        if self.steadiness == 0:
            return painting
        cv2 = self.cv2
        grey, painting = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), painting.astype(np.float32)
        if self.previous is not None:
            last_grey, last_painting = self.previous
            height, width = grey.shape
            if self.grid is None or self.grid.shape[:2] != grey.shape:
                self.grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
            where = self.camera_motion(self.flow.calc(grey, last_grey, None) + self.grid)  # where each pixel was
            x, y = where[..., 0], where[..., 1]
            moved_grey = cv2.remap(last_grey, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            moved_painting = cv2.remap(last_painting, x, y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            off = cv2.absdiff(moved_grey, grey).astype(np.float32)
            keep = np.clip(1 - off / FLOW_TOLERANCE, 0, 1) * self.steadiness
            keep[(x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)] = 0  # what was outside the last frame
            painting = cv2.blendLinear(moved_painting, painting, keep, 1 - keep)
        self.previous = grey, painting
        return np.clip(painting + 0.5, 0, 255).astype(np.uint8)

    def camera_motion(self, where: np.ndarray) -> np.ndarray:
        """The dense flow replaced by one affine motion (the camera's pan, zoom or tilt, fitted with RANSAC) wherever
        the two agree within a pixel: the flow's own noise would shift the strokes a little every frame; what moves on
        its own keeps its dense flow."""
        cv2, sample = self.cv2, np.s_[8::16, 8::16]
        motion, _ = cv2.estimateAffine2D(self.grid[sample].reshape(-1, 2), where[sample].reshape(-1, 2), ransacReprojThreshold=1.0)
        if motion is None:
            return where
        fitted = cv2.transform(self.grid.reshape(-1, 1, 2), motion).reshape(where.shape)
        off = fitted - where
        np.copyto(where, fitted, where=(off[..., 0] ** 2 + off[..., 1] ** 2 < 1)[..., None])
        return where


class FramePainter:
    """Paints one frame after another with one style (or mix): the style encoded once, the photo's statistics smoothed,
    the picture steadied."""

    def __init__(self, stylizer, style, lambdas: torch.Tensor, strength: float, preserve_color: bool, max_side: int,
                 stroke_scale: float, variant: str, steadiness: float, degrees: int):
        self.stylizer, self.style, self.lambdas, self.strength, self.degrees = stylizer, style, lambdas, strength, degrees
        self.preserve_color, self.max_side, self.stroke_scale, self.variant = preserve_color, max_side, stroke_scale, variant
        self.stats, self.steadier = None, Steadier(steadiness)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """An upright RGB frame (H, W, 3) uint8 at the size it is painted -> its painting, the same size, steadied."""
        return self.steadier(frame, self.painted(frame))

    @torch.no_grad()
    def painted(self, frame: np.ndarray) -> np.ndarray:
        """The frame's painting, not yet steadied."""
        photo = torch.tensor(frame).permute(2, 0, 1)[None].float().div_(255)  # a copy: a frame may be read-only
        painted_at = photo if self.stroke_scale == 1 else painting_size(Image.fromarray(frame), self.stroke_scale)
        encoding = self.stylizer.encode_content(painted_at, self.variant, cached=False)
        if self.stats is None:
            self.stats = encoding.stats
        else:
            self.stats = [tuple(STATS_SMOOTHING * old + (1 - STATS_SMOOTHING) * new for old, new in zip(before, now))
                          for before, now in zip(self.stats, encoding.stats)]
        out = self.stylizer.stylize_tensor(dataclasses.replace(encoding, stats=self.stats), self.style, self.lambdas,
                                           self.strength, self.variant)
        return np.asarray(finished_picture(out, photo, self.preserve_color, with_detail=self.stroke_scale > 1))


def ahead(items: Iterator, depth: int = AHEAD) -> Iterator:
    """`items` produced in a thread of their own, at most `depth` ahead of whoever iterates; an error there is raised
    here, and the thread stops when the iteration does (a Stop in the app, an error in the painter)."""
    pending, stop, end = queue.Queue(depth), threading.Event(), object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            put(err)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while (item := pending.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def painted_frames(painter: FramePainter, path) -> Iterator[Image.Image]:
    """The clip's frames, painted, as they are decoded (no sound)."""
    container, stream = opened(path)
    with container:
        for frame in ahead(upright_frames(container, stream, painted_size(stream, painter.max_side, painter.degrees))):
            yield Image.fromarray(painter(frame))


def write_video(painter: FramePainter, source, out_path: Path, progress=None) -> tuple[int, float, bool]:
    """The painted clip as H.264 mp4 at `out_path` (written beside it, then renamed), at the source's frame rate, with its
    sound; decoding runs ahead of the painter and encoding behind it, each in a thread. progress(frames done, frames in
    all or None). -> (frames, frames per second, whether sound was kept)."""
    import av

    container, stream = opened(source)
    audio = container.streams.audio[0] if container.streams.audio else None
    total, size = stream.frames or None, painted_size(stream, painter.max_side, painter.degrees)
    rate = stream.average_rate or stream.guessed_rate or 25
    kept_as_is = audio is not None and audio.codec_context.name in AUDIO_KEPT_AS_IS
    done = [0]

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as out:
            video = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
            video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
            sound = None
            if audio is not None:
                sound = out.add_stream_from_template(audio) if kept_as_is else out.add_stream("aac", rate=audio.rate or 44100)

            def write(item) -> None:
                if isinstance(item, tuple):  # (a frame, its painting): steadied here, beside the next frame's painting
                    out.mux(video.encode(av.VideoFrame.from_ndarray(painter.steadier(*item), format="rgb24")))
                elif kept_as_is:
                    item.stream = sound
                    out.mux(item)
                else:
                    for samples in item.decode():
                        samples.pts = None
                        out.mux(sound.encode(samples))

            def painted() -> Iterator:
                packets = container.demux(*(s for s in (stream, audio) if s is not None))
                for item in ahead(upright_frames(container, stream, size, packets)):
                    if isinstance(item, np.ndarray):
                        yield item, painter.painted(item)
                        done[0] += 1
                        if progress is not None:
                            progress(done[0], total)
                    elif item.dts is not None:
                        yield item

            for item in ahead(painted()):
                write(item)
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


def stylize_video(stylizer, content, style=None, output=None, lambdas: dict | None = None, strength: float = 1.0,
                  preserve_color: bool = False, max_side: int = 512, stroke_scale: float = 1.0, variant: str | None = None,
                  styles: list | None = None, style_weights: list | None = None, steadiness: float = STEADINESS,
                  max_seconds: float = MAX_SECONDS, progress=None):
    """Stylizer.stylize_video: `content` a clip file, `style` any image (or `styles` mixed by `style_weights`). With
    `output` (an .mp4 path) the painted clip is written there, sound kept -> (frames, frames per second, sound kept);
    without, an iterator of the painted frames. Clips longer than `max_seconds` are refused in one line."""
    from .checks import STROKE_SCALES, checked_flag, checked_max_side, checked_number, checked_styles

    if output is not None and Path(output).suffix.lower() != ".mp4":
        raise ValueError(f"a stylised video is written as H.264 .mp4, not {Path(output).suffix or 'a name without suffix'}")
    variant = stylizer.checked_variant(variant)
    degrees = rotation(content, max_seconds)  # and a bad clip is one line before any work (the painting's encoding included)
    images, weights = checked_styles(style, styles, style_weights)
    images = [stylizer.fitted(image, "style", stylizer.style_max_side) for image in images]
    painter = FramePainter(stylizer, stylizer.style_argument(images, weights, variant), stylizer.resolve_lambdas(lambdas),
                           checked_number(strength, "strength", 0.0, 1.0), checked_flag(preserve_color, "preserve_color"),
                           checked_max_side(max_side), checked_number(stroke_scale, "stroke scale", *STROKE_SCALES), variant,
                           checked_number(steadiness, "steadiness", 0.0, 1.0), degrees)
    if output is None:
        return painted_frames(painter, content)
    return write_video(painter, content, Path(output), progress)
