"""Stylize web app: a photo, any painting, five loss-weight sliders. Runs locally and as a Hugging Face Space.

    python app.py                                  # embedded weights/, http://127.0.0.1:7860
    STYLIZE_MODEL=owner/repo python app.py         # a Hub checkpoint instead
"""
try:  # ZeroGPU: `spaces` patches CUDA start-up, so it is imported before torch
    import spaces
except ImportError:
    spaces = None

import os
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from stylize.checkpoint import CheckpointError
from stylize.images import ImageInputError
from stylize.checks import MAX_STYLES, STROKE_SCALES
from stylize.pipeline import Stylizer
from stylize.tiling import poster_fits
from stylize.serving import (
    DISK_BYTES, MAX_UPLOAD_BYTES, UNUSED_SECONDS, DiskBudget, RendersFirst, ResultFiles, UploadBudget, gpu_seconds,
    run_watched, shown_at_most_every,
)
from stylize.web import Request, describe, describe_video, refine_budget
from stylize.video import VideoInputError
from stylize.web_components import api_inputs, image_upload, lambda_sliders, paint_harder, paint_regions, style_mix, video_inputs

EXAMPLES = Path(__file__).resolve().parent / "examples"
POSTERS = [side for side in (4096, 8192) if poster_fits(side)]  # painted in tiles; offered where the machine holds them
RESOLUTIONS = [256, 384, 512, 768, 1024, 1536, 2048, *POSTERS]
DEFAULT_RESOLUTION = 512
# The fast student is offered wherever the model has one, but not chosen by default until it paints like its teacher:
# after CPU-only distillation it takes the palette and a soft texture, not the strokes (bench/results/quality_fast.md).
DEFAULT_VARIANT = "quality"
# ...but on a CPU the quality model takes seconds a slider move (2.9 s at 1024 px on a 2-core AVX2 CPU, the student
# 0.19 s; bench/results/speed_cpu_avx2.md): there the page shows the student's picture first, then the quality one.
# STYLIZE_PREVIEW=0 turns that off (bench/app_load.py times the page both ways).
PREVIEWS = os.environ.get("STYLIZE_PREVIEW", "1") != "0"
PREVIEW_NOTE = " · **preview** by the fast model: the quality picture follows"
# "Paint harder" refines for a time budget: on two CPU cores 15 s lift P(painting) well above the one-pass picture's
# (bench/results/refine.md). The most one request may ask for is bounded, so that no visitor holds the shared cores
# for long; refine also pauses between steps while a render runs.
PAINT_HARDER_SECONDS = 15
MAX_PAINT_HARDER_SECONDS = 60
PREVIEW_EVERY_S = 1.0  # refine shows its picture at most this often (each one a PNG written and copied)
# Videos: what one visitor may paint on a shared CPU (the CLI takes 30 minutes), at sizes a 2-core CPU paints at
# 4-12 frames a second with the fast model (bench/results/video.md).
VIDEO_SECONDS = float(os.environ.get("STYLIZE_VIDEO_SECONDS", "60"))
VIDEO_SIDES, DEFAULT_VIDEO_SIDE = [256, 480, 720, 1080], 480
# The λ sliders move log10 λ: their own number box and log-valued ends are hidden; the box beside each shows λ.
CSS = ".lambda-slider input[type=number], .lambda-slider .min_value, .lambda-slider .max_value { display: none; }"


def on_zero_gpu(duration):
    """@spaces.GPU(duration=...) where the `spaces` package is installed (a no-op off ZeroGPU hardware)."""
    return spaces.GPU(duration=duration) if spaces is not None else (lambda fn: fn)


def load_stylizer() -> Stylizer:
    try:
        return Stylizer.from_pretrained(os.environ.get("STYLIZE_MODEL") or None, variant="fast")  # falls back without one
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None


stylizer = load_stylizer()
renders_first = RendersFirst()
disk = DiskBudget(Path(get_upload_folder()), DISK_BYTES, UNUSED_SECONDS)
results = ResultFiles(disk, stylizer.fitted)


@on_zero_gpu(duration=lambda content, options: gpu_seconds(options["max_side"]))
def render(content, options: dict):
    with renders_first.render():
        return stylizer(content, **options)


@on_zero_gpu(duration=lambda content, options, seconds, steps=0: gpu_seconds(options["max_side"], seconds))
def refine(content, options: dict, seconds: float, steps: int = 0):
    """Yields (steps done, picture): the one-pass picture (of `variant`) first; refine itself is always the VGG objective.
    Time spent waiting for other visitors' renders does not count against the budget."""
    pictures = stylizer.stylize_steps(content, refine_steps=steps, refine_seconds=seconds, **options)
    for done, picture in enumerate(pictures):
        yield done, picture
        if stylizer.device.type == "cpu":
            renders_first.wait_for_renders()


def request_options(inputs: dict, regions: bool = True) -> tuple[Request, dict]:
    """The request and its Stylizer arguments; a gr.Error in one line where a setting is wrong or an upload is gone."""
    request = Request.from_inputs(inputs, DEFAULT_VARIANT)
    if not all(Path(image).is_file() for image in request.images()):
        raise gr.Error(f"An image was removed after {UNUSED_SECONDS / 60:g} minutes unused, or to make room: upload it again.")
    disk.touch(*request.images())
    try:
        return request, request.options(stylizer.variants, regions)
    except ValueError as err:
        raise gr.Error(str(err)) from None


def stylize(style_2=None, style_3=None, style_4=None, mask=None, outside_style=None, **inputs):
    """API /stylize: ((photo, stylized) for the before/after view, the stylized PNG, a summary) in one forward pass.
    Parameters: build_demo's names (λ itself: lambda_style=...); the images named here are optional."""
    request, options = request_options({**inputs, "style_2": style_2, "style_3": style_3, "style_4": style_4,
                                        "mask": mask, "outside_style": outside_style})
    image, elapsed = painted(request.content, options)
    pair, download = results.pair(request.content, image)
    return pair, download, describe(image, elapsed, options, stylizer)


def painted(content, options: dict):
    """(the picture, seconds): one forward pass, bad files and bad numbers (an API caller's NaN) as a one-line error."""
    started = time.perf_counter()
    try:
        return render(content, options), time.perf_counter() - started
    except (ImageInputError, ValueError) as err:
        raise gr.Error(str(err)) from None


def refine_steps(style_2=None, style_3=None, style_4=None, progress=gr.Progress(), **inputs):
    """API /refine: optimizes the picture with exactly these λ for `seconds` (at most MAX_PAINT_HARDER_SECONDS), or
    `steps` steps where that ends first (0: as many as fit), showing it as it goes."""
    request, options = request_options({**inputs, "style_2": style_2, "style_3": style_3, "style_4": style_4}, regions=False)
    yield from refined(request.content, options, inputs.get("seconds", PAINT_HARDER_SECONDS), inputs.get("steps", 0), progress)


def refined(content, options: dict, seconds, steps, progress):
    """The outputs as refine goes: the one-pass picture, then the refined one at most every PREVIEW_EVERY_S, and the
    last. Stop (a cancel) leaves the last one shown and its download."""
    try:
        seconds, steps = refine_budget(seconds, steps, MAX_PAINT_HARDER_SECONDS)
        progress((0, round(seconds)), desc="painting harder", unit="s")
        for done, picture, elapsed in shown_at_most_every(refine(content, options, seconds, steps), PREVIEW_EVERY_S):
            progress((min(round(elapsed), round(seconds)), round(seconds)), desc="painting harder", unit="s")
            note = f" · painted harder: {done} refine step{'s' * (done != 1)}" if done else " · one pass; painting harder…"
            pair, download = results.pair(content, picture)
            yield pair, download, describe(picture, elapsed, options, stylizer, note)
    except (ImageInputError, ValueError) as err:
        raise gr.Error(str(err)) from None


def previews(variant: str) -> bool:
    return PREVIEWS and variant == "quality" and "fast" in stylizer.variants and stylizer.device.type == "cpu"


def stylize_page(**inputs):
    """Yields the page's outputs: on a CPU for the quality model, the fast student's picture first; then the picture;
    then its PNG for the download (written after the picture is on its way)."""
    if inputs.pop("mode", "photo") == "video":  # the Video tab: its own handler paints
        return
    request, options = request_options(inputs)
    if previews(options["variant"]):
        yield viewed(request.content, {**options, "variant": "fast"}, PREVIEW_NOTE)[1]
    image, outputs = viewed(request.content, options)
    yield outputs
    yield gr.skip(), results.download(image), gr.skip()


def viewed(content, options: dict, note: str = "") -> tuple:
    """(the picture, the page's outputs for it): shown, with nothing to download yet."""
    image, elapsed = painted(content, options)
    return image, (results.view(content, image), None, describe(image, elapsed, options, stylizer, note))


def refine_page(progress=gr.Progress(), **inputs):
    request, options = request_options(inputs, regions=False)
    if request.mask is not None:
        gr.Info("Refine works on the whole picture: painted regions apply to Stylize only.")
    yield from refined(request.content, options, inputs["seconds"], 0, progress)


@on_zero_gpu(duration=lambda clip, options, path, frame_done: gpu_seconds(options["max_side"], VIDEO_SECONDS))
def render_video(clip, options: dict, path: Path, frame_done):
    return stylizer.stylize_video(clip, output=path, max_seconds=VIDEO_SECONDS, progress=frame_done, **options)


def video_page(progress=gr.Progress(), **inputs):
    """Yields the painted clip and its summary, when a slider moves or Stylize video is pressed on the Video tab.
    Stop (or a closed page) ends it between two frames and leaves no file."""
    if inputs.pop("mode") != "video":
        return
    if inputs["clip"] is None:
        yield gr.skip(), "Add a clip and a style image first."
        return
    request, options = request_options({**inputs, "content": inputs["clip"], "resolution": inputs["clip_side"]}, regions=False)
    path, frames, started = results.clip(VIDEO_SECONDS, (options["max_side"],) * 2), [0, None], time.perf_counter()

    def paint(check):
        return render_video(request.content, options, path, lambda *done: (check(), frames.__setitem__(slice(None), done)))

    def painting():
        progress(tuple(frames) if frames[1] else frames[0], desc="painting frames", unit="frames")
        return gr.skip(), f"painting… {frames[0]} frames"

    try:
        count, rate, sound = yield from run_watched(paint, painting)
    except (VideoInputError, ImageInputError, ValueError) as err:
        raise gr.Error(str(err)) from None
    disk.touch(path)
    yield str(path), describe_video(count, rate, sound, time.perf_counter() - started, options, stylizer)


def build_demo() -> gr.Blocks:
    defaults, ranges = stylizer.lambda_defaults, stylizer.lambda_ranges
    with gr.Blocks(title="Stylize") as demo:
        gr.Markdown("# Stylize\nAny photo, any painting. Move a slider: the picture follows in one forward pass.")
        mode = gr.State("photo")
        with gr.Row():
            with gr.Column(scale=2):
                with gr.Tabs():
                    with gr.Tab("Photo", elem_id="photo_tab") as photo_tab:
                        with gr.Row():
                            content = image_upload("Content photo", "content", sources=("upload", "clipboard", "webcam"))
                            output = gr.ImageSlider(label="Before | after", type="filepath", interactive=False, elem_id="output")
                    with gr.Tab("Video", elem_id="video_tab") as video_tab:
                        (clip, painted_clip, clip_side, run_video, stop_video,
                         clip_info) = video_inputs(VIDEO_SECONDS, VIDEO_SIDES, DEFAULT_VIDEO_SIDE)
            style = image_upload("Style image", "style")
        with gr.Row():
            with gr.Column():
                sliders = lambda_sliders(defaults, ranges)
            with gr.Column():
                strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Style strength", info="0 gives the photo back", elem_id="strength")
                stroke = gr.Slider(STROKE_SCALES[0], STROKE_SCALES[1], value=1.0, step=0.05, label="Stroke size",
                                   info="larger or smaller brush strokes at the same output size", elem_id="stroke_scale")
                preserve = gr.Checkbox(label="Preserve colour (luminance-only transfer)", value=False)
                resolution = gr.Dropdown(RESOLUTIONS, value=DEFAULT_RESOLUTION, label="Output resolution (long side, px)",
                                         elem_id="resolution", info="above 2048 px: a poster, painted in tiles (slower)"
                                         if POSTERS else "no posters: this machine has too little memory free for them")
                variant = gr.Radio(list(stylizer.variants), value=DEFAULT_VARIANT, label="Model", elem_id="variant",
                                   visible=len(stylizer.variants) > 1,
                                   info="fast: the distilled student (CPU speed) · quality: the VGG generator it learned from"
                                        + (" (on this CPU the fast picture shows first)" if previews("quality") else ""))
                with gr.Row():
                    run = gr.Button("Stylize", variant="primary", elem_id="run")
                    reset = gr.Button("Reset sliders")
                refine_seconds, refine_button, stop = paint_harder(PAINT_HARDER_SECONDS, MAX_PAINT_HARDER_SECONDS)
                info = gr.Markdown(label="summary", elem_id="info")
                download = gr.DownloadButton("Download full-resolution PNG", elem_id="download")
        weight_1, mix_slots, mix_weights = style_mix(MAX_STYLES)
        region, mask_upload, outside_style = paint_regions()
        content.change(lambda photo: {"background": photo, "layers": [], "composite": photo} if photo else None, content, region,
                       api_visibility="private")
        pairs = zip(sorted((EXAMPLES / "content").glob("*.jpg")), sorted((EXAMPLES / "style").glob("*.jpg")))
        gr.Examples(examples=[[str(c), str(s)] for c, s in pairs], inputs=[content, style], outputs=[output, download, info],
                    fn=lambda c, s: stylize(content=c, style=s, **{f"lambda_{n}": v for n, v in defaults.items()}),
                    cache_examples=True, cache_mode="lazy", label="Examples (public domain / CC0, see examples/SOURCES.md)")
        gr.Examples(examples=[[str(s)] for s in sorted((EXAMPLES / "style").glob("*.jpg"))], inputs=[style], label="Example styles")

        settings = {"content": content, "style": style, "strength": strength, "preserve_color": preserve, "resolution": resolution,
                    "variant": variant, "stroke_scale": stroke, "weight_1": weight_1,
                    **{f"style_{k}": slot for k, slot in enumerate(mix_slots, 2)},
                    **{f"weight_{k}": w for k, w in enumerate(mix_weights, 2)}}
        regions = {"region": region, "mask_upload": mask_upload, "outside_style": outside_style}
        outputs = [output, download, info]

        slider_inputs = {f"log_{n}": s for n, s in sliders.items()}
        # Encodings are cached, so a slider release re-runs only fusion + decoder; the last release while a render
        # runs is the one rendered next (always_last), so the picture always ends up matching the sliders.
        photo_tab.select(lambda: "photo", outputs=mode, api_visibility="private")
        video_tab.select(lambda: ("video", "fast" if previews("quality") else gr.skip()), outputs=[mode, variant],  # minutes, not hours
                         api_visibility="private")
        moved = [*(s.release for s in [*sliders.values(), strength, stroke, weight_1, *mix_weights]), preserve.input, variant.input]
        gr.on([run.click, *moved, resolution.input], stylize_page, inputs_kwargs={**settings, **regions, **slider_inputs, "mode": mode},
              outputs=outputs, api_visibility="private", trigger_mode="always_last", show_progress="minimal",
              concurrency_id="render", concurrency_limit=1)
        painting_video = gr.on([run_video.click, *moved], video_page,
                               inputs_kwargs={**settings, **slider_inputs, "mode": mode, "clip": clip, "clip_side": clip_side},
                               outputs=[painted_clip, clip_info], api_visibility="private", trigger_mode="always_last",
                               show_progress="minimal", concurrency_id="video", concurrency_limit=1)
        stop_video.click(None, cancels=[painting_video], api_visibility="private")
        refining = refine_button.click(refine_page, inputs_kwargs={**settings, "region": region, "mask_upload": mask_upload,
                                                                   **slider_inputs, "seconds": refine_seconds}, outputs=outputs,
                                       api_visibility="private", show_progress="minimal", concurrency_id="refine", concurrency_limit=1)
        stop.click(None, cancels=[refining], api_visibility="private")
        reset.click(lambda: [s.value for s in sliders.values()] + [1.0, 1.0], outputs=[*sliders.values(), strength, stroke],
                    api_visibility="private")

        api_lambdas, api_seconds, api_steps, api_mask, api_stylize, api_refine = api_inputs(defaults, ranges, PAINT_HARDER_SECONDS,
                                                                                         MAX_PAINT_HARDER_SECONDS)
        api_stylize.click(stylize, inputs_kwargs={**settings, **api_lambdas, "mask": api_mask, "outside_style": outside_style},
                          outputs=outputs, api_name="stylize", concurrency_id="render", concurrency_limit=1)
        api_refine.click(refine_steps, inputs_kwargs={**settings, **api_lambdas, "seconds": api_seconds, "steps": api_steps},
                         outputs=outputs, api_name="refine", concurrency_id="refine", concurrency_limit=1)
    demo.queue(max_size=64, default_concurrency_limit=1)
    return demo


demo = build_demo()  # module level: Spaces and `gradio app.py` (reload mode) look for `demo`

if __name__ == "__main__":
    disk.keep_pruning(every_seconds=min(60.0, UNUSED_SECONDS / 4))
    # a multipart body is a little larger than the file it carries
    upload_budget = Middleware(UploadBudget, budget=disk, max_request_bytes=MAX_UPLOAD_BYTES + 2**16)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), show_error=True, max_file_size=MAX_UPLOAD_BYTES,
                css=CSS, app_kwargs={"middleware": [upload_budget]})
