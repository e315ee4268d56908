"""Stylize web app: a photo, any painting, five loss-weight sliders. Runs locally and as a Hugging Face Space.

    python app.py                                  # embedded weights/, http://127.0.0.1:7860
    STYLIZE_MODEL=owner/repo python app.py         # a Hub checkpoint instead
"""
import math
import os
import tempfile
import time
from pathlib import Path

import gradio as gr

from stylize.checkpoint import CheckpointError
from stylize.generator import LAMBDA_NAMES
from stylize.images import ImageInputError
from stylize.pipeline import Stylizer

try:  # ZeroGPU on Spaces: the decorated function gets a GPU slice per call
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn

EXAMPLES = Path(__file__).resolve().parent / "examples"
LAMBDA_INFO = {
    "content": "keep the photo's structure",
    "style": "match the painting's textures and colours",
    "tv": "smoothness (total variation)",
    "adv": "look like a real painting (discriminator)",
    "cycle": "stay invertible back to the photo",
}
RESOLUTIONS = [256, 384, 512, 768, 1024, 1536, 2048]


def image_upload(label: str, elem_id: str) -> gr.Image:
    """An image input that hands the uploaded file's path on undecoded: the pipeline's loader handles
    every mode and explains a broken file, where Gradio's own decoding fails with an internal error."""
    component = gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], elem_id=elem_id)
    component.preprocess = lambda payload: None if payload is None else payload.path
    return component


def build_demo(stylizer: Stylizer) -> gr.Blocks:
    defaults, ranges = stylizer.lambda_defaults, stylizer.lambda_ranges
    output_dir = Path(tempfile.mkdtemp(prefix="stylize-app-"))

    @on_gpu
    def stylize_images(content, style, *values):
        *log_lambdas, strength, preserve_color, resolution, refine_steps = values
        if content is None or style is None:
            raise gr.Error("Add a content photo and a style image first.")
        lambdas = {name: 10.0**v for name, v in zip(LAMBDA_NAMES, log_lambdas)}
        started = time.perf_counter()
        try:
            image = stylizer(content, style, lambdas=lambdas, strength=float(strength), preserve_color=bool(preserve_color),
                             max_side=int(resolution), refine_steps=int(refine_steps))
        except (ImageInputError, ValueError) as err:  # bad files, bad numbers (an API caller's NaN)
            raise gr.Error(str(err)) from None
        elapsed = time.perf_counter() - started
        path = output_dir / f"stylized-{time.time_ns()}.png"
        image.save(path, compress_level=1)  # fast PNG: the file is both the preview and the download
        weights = ", ".join(f"{n} {v:.3g}" for n, v in lambdas.items())
        info = f"**{image.width}×{image.height}** in **{elapsed:.2f} s** on `{stylizer.device}` · λ: {weights}"
        return str(path), str(path), info

    with gr.Blocks(title="Stylize") as demo:
        gr.Markdown("# Stylize\nAny photo, any painting. Move a slider: the picture follows in one forward pass.")
        with gr.Row():
            content = image_upload("Content photo", "content")
            style = image_upload("Style image", "style")
            output = gr.Image(label="Stylised", type="filepath", format="png", interactive=False, elem_id="output")
        with gr.Row():
            with gr.Column():
                sliders = [
                    gr.Slider(round(math.log10(ranges[n][0]), 2), round(math.log10(ranges[n][1]), 2), value=round(math.log10(defaults[n]), 2), step=0.01,
                              label=f"λ {n} (log10)", info=LAMBDA_INFO[n], elem_id=f"lambda_{n}")
                    for n in LAMBDA_NAMES
                ]
            with gr.Column():
                strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Style strength", info="0 gives the photo back", elem_id="strength")
                preserve = gr.Checkbox(label="Preserve colour (luminance-only transfer)", value=False)
                resolution = gr.Dropdown(RESOLUTIONS, value=512, label="Output resolution (long side, px)")
                refine = gr.Slider(0, 50, value=0, step=1, label="Refine steps", info="optimise the image with exactly these λ (slow on CPU)")
                with gr.Row():
                    run = gr.Button("Stylize", variant="primary", elem_id="run")
                    reset = gr.Button("Reset sliders")
                info = gr.Markdown(elem_id="info")
                download = gr.DownloadButton("Download full-resolution PNG", elem_id="download")
        gr.Examples(
            examples=[[str(c), str(s)] for c, s in zip(sorted((EXAMPLES / "content").glob("*.jpg")), sorted((EXAMPLES / "style").glob("*.jpg")))],
            inputs=[content, style], label="Examples (public domain / CC0, see examples/SOURCES.md)",
        )
        gr.Examples(examples=[[str(s)] for s in sorted((EXAMPLES / "style").glob("*.jpg"))], inputs=[style], label="Example styles")

        controls = [content, style, *sliders, strength, preserve, resolution, refine]
        outputs = [output, download, info]
        # Encodings are cached by the pipeline, so a slider release re-runs only fusion + decoder.
        gr.on([run.click, *(s.release for s in sliders), strength.release, preserve.input, resolution.input],
              stylize_images, inputs=controls, outputs=outputs, api_name="stylize", concurrency_limit=1)
        reset.click(lambda: [s.value for s in sliders] + [1.0], outputs=[*sliders, strength], api_name=False)
    return demo


def main() -> None:
    try:
        stylizer = Stylizer.from_pretrained(os.environ.get("STYLIZE_MODEL") or None)
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None
    demo = build_demo(stylizer)
    demo.queue(max_size=64, default_concurrency_limit=1)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), show_error=True)


if __name__ == "__main__":
    main()
