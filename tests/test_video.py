"""Videos: painted frame by frame as they stream, at their frame rate and length, sound kept; bad clips one line."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from stylize.pipeline import Stylizer
from stylize.video import VideoInputError

from .conftest import REPO

av = pytest.importorskip("av")
PHOTO = REPO / "examples" / "content" / "deb-skimage-chelsea.jpg"
STYLE = REPO / "examples" / "style" / "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg"


def clip(path, frames: int = 12, size=(96, 64), fps: int = 12, sound: bool = True, pan: int = 4):
    """A pan across a photo (4 px a frame), with a 440 Hz tone where `sound`."""
    wide = Image.open(PHOTO).convert("RGB").resize((size[0] + pan * frames, size[1]))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = out.add_stream("aac", rate=44100) if sound else None
        for i in range(frames):
            picture = np.ascontiguousarray(np.asarray(wide.crop((i * pan, 0, i * pan + size[0], size[1]))))
            out.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            if audio is not None:
                count = 44100 // fps
                tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(i * count, (i + 1) * count) / 44100)).astype(np.float32)
                samples = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                samples.rate, samples.pts = 44100, i * count
                out.mux(audio.encode(samples))
        out.mux(video.encode())
        if audio is not None:
            out.mux(audio.encode())
    return path


@pytest.fixture(scope="module")
def fast() -> Stylizer:
    torch.set_num_threads(2)
    return Stylizer.from_pretrained(device="cpu", variant="fast")


def streams(path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {"frames": sum(1 for _ in container.decode(video)), "fps": float(video.average_rate),
                "size": (video.width, video.height), "audio": [s.codec_context.name for s in container.streams.audio],
                "seconds": round(container.duration / 1e6, 1)}


def test_a_clip_keeps_its_frames_rate_length_and_sound(fast, tmp_path):
    source = clip(tmp_path / "pan.mp4")
    frames, fps, sound = fast.stylize_video(source, STYLE, tmp_path / "out.mp4", max_side=96, strength=0.8)
    before, after = streams(source), streams(tmp_path / "out.mp4")
    assert (frames, fps, sound) == (12, 12.0, True)
    assert after == before
    painted = list(fast.stylize_video(source, STYLE, max_side=96, strength=0.8))  # no output: the frames, as they come
    assert len(painted) == 12 and painted[0].size == (96, 64)
    with av.open(str(tmp_path / "out.mp4")) as container:
        first = next(container.decode(video=0)).to_image()
    assert np.abs(np.asarray(first, dtype=float) - np.asarray(painted[0], dtype=float)).mean() < 6  # H.264 at crf 18


def test_the_cli_paints_a_clip_with_progress_and_a_summary(tmp_path):
    source = clip(tmp_path / "pan.mov", sound=False)
    done = subprocess.run([sys.executable, "-m", "stylize", str(source), str(STYLE), "-o", str(tmp_path / "out.mp4"),
                           "--variant", "fast", "--max-side", "96"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "12 frames at 12 fps" in done.stdout and "sound" not in done.stdout
    assert streams(tmp_path / "out.mp4")["frames"] == 12


def test_bad_clips_are_one_line_and_leave_no_file(fast, tmp_path):
    source = clip(tmp_path / "pan.mp4", frames=24)
    data = source.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 3 // 5])
    (tmp_path / "text.mp4").write_text("not a video")
    with av.open(str(tmp_path / "sound.m4v"), "w", format="mp4") as out:  # sound, no picture
        audio = out.add_stream("aac", rate=44100)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        samples.rate, samples.pts = 44100, 0
        out.mux(audio.encode(samples))
        out.mux(audio.encode())
    for name, words in (("cut.mp4", "video: "), ("text.mp4", "not a video file"), ("sound.m4v", "no picture"),
                        ("missing.mp4", "file not found")):
        with pytest.raises(VideoInputError, match=words) as caught:
            fast.stylize_video(tmp_path / name, STYLE, tmp_path / "out.mp4", max_side=96)
        assert "\n" not in str(caught.value)
        assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4*"))
    with pytest.raises(ValueError, match="written as H.264 .mp4"):
        fast.stylize_video(source, STYLE, tmp_path / "out.gif")


def moved_flicker(frames, pan: int = 4) -> float:
    """Mean grey-level change between painted frames once the pan's known shift is taken out (the bench's measure)."""
    grey = [np.asarray(f.convert("L"), dtype=float) for f in frames]
    return float(np.mean([np.abs(b[8:-8, 8:-8 - pan] - a[8:-8, 8 + pan:-8])[:, :].mean() for a, b in zip(grey, grey[1:])]))


def test_a_steadied_clip_flickers_far_less_than_frame_by_frame_and_paints_as_much(fast, tmp_path):
    source = clip(tmp_path / "pan.mp4", frames=12, size=(128, 80), sound=False)
    steady = list(fast.stylize_video(source, STYLE, max_side=128))
    by_frame = list(fast.stylize_video(source, STYLE, max_side=128, steadiness=0))
    assert moved_flicker(steady) < 0.4 * moved_flicker(by_frame)
    # what the steadying keeps is the painting itself: each frame stays close to its own still
    assert all(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean() < 12 for a, b in zip(steady, by_frame))
    with pytest.raises(ValueError, match="steadiness"):
        fast.stylize_video(source, STYLE, max_side=128, steadiness=1.5)


def test_a_phones_rotated_clip_comes_out_upright_and_a_mix_paints_it(fast, tmp_path):
    source = tmp_path / "phone.mp4"
    with av.open(str(source), "w") as out:  # recorded sideways, shown turned by 90 degrees
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.set_display_rotation(90)
        landscape = np.asarray(Image.open(PHOTO).convert("RGB").resize((96, 64)))
        for _ in range(3):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(landscape), format="rgb24")))
        out.mux(video.encode())
    frames, _, _ = fast.stylize_video(source, STYLE, tmp_path / "out.mp4", max_side=96)
    assert frames == 3 and streams(tmp_path / "out.mp4")["size"] == (64, 96)  # upright: portrait
    single = list(fast.stylize_video(source, STYLE, max_side=96))
    mixed = list(fast.stylize_video(source, styles=[STYLE, PHOTO], style_weights=[1, 0], max_side=96))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(single, mixed))


def test_steadiness_is_a_videos_flag(tmp_path):
    done = subprocess.run([sys.executable, "-m", "stylize", str(PHOTO), str(STYLE), "-o", str(tmp_path / "out.png"),
                           "--steadiness", "0.5"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode != 0 and "--steadiness is for a video" in done.stderr and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("suffix, codec, pix_fmt", [(".webm", "libvpx-vp9", "yuv420p"), (".mkv", "libx264", "yuv420p"),
                                                    (".gif", "gif", "rgb8")])
def test_common_containers_come_in(fast, tmp_path, suffix, codec, pix_fmt):
    frames = [np.asarray(Image.open(PHOTO).convert("RGB").resize((96, 64)).rotate(i)) for i in range(5)]
    source = tmp_path / f"clip{suffix}"
    with av.open(str(source), "w") as out:
        video = out.add_stream(codec, rate=10)
        video.width, video.height, video.pix_fmt = 96, 64, pix_fmt
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        out.mux(video.encode())
    count, _, sound = fast.stylize_video(source, STYLE, tmp_path / "out.mp4", max_side=96)
    assert count == 5 and not sound and streams(tmp_path / "out.mp4")["frames"] == 5


def test_a_clip_over_the_hosts_limit_is_one_line_naming_it(fast, tmp_path):
    source = clip(tmp_path / "pan.mp4", frames=24, sound=False)  # 2 s
    with pytest.raises(VideoInputError, match=r"2 s of 96×64 px is more than a run here takes \(1 s") as caught:
        fast.stylize_video(source, STYLE, tmp_path / "out.mp4", max_seconds=1)
    assert "\n" not in str(caught.value) and not (tmp_path / "out.mp4").exists()
