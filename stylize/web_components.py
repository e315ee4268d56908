"""The app's Gradio pieces: inputs that hand on what the pipeline reads, undecoded (an uploader's file path, a region
painter's layers), and the groups of controls the page is built from."""
import math

import gradio as gr

from .lambda_spec import LAMBDA_NAMES

LAMBDA_INFO = {"content": "keep the photo's structure", "style": "match the painting's textures and colours",
               "tv": "smoothness (total variation)", "adv": "look like a real painting (discriminator)",
               "cycle": "stay invertible back to the photo"}


def image_upload(label: str, elem_id: str, sources=("upload", "clipboard"), **options) -> gr.Image:
    """An image input that hands the uploaded file's path on undecoded: the pipeline's loader handles
    every mode and explains a broken file, where Gradio's own decoding fails with an internal error."""
    component = gr.Image(label=label, type="filepath", sources=list(sources), elem_id=elem_id, **options)
    component.preprocess = lambda payload: None if payload is None else payload.path
    return component


def region_painter(label: str, elem_id: str) -> gr.ImageEditor:
    """A brush over the photo that hands on only the painted layers (RGBA). The editor's background and composite are
    the photo itself: Gradio's own preprocessing decoded both on every slider move, 0.25 s of it at 2048 px."""
    component = gr.ImageEditor(label=label, type="pil", sources=[], format="png", layers=False, elem_id=elem_id,
                               brush=gr.Brush(colors=["#ff3355"], default_size=40))

    def painted_layers(payload) -> list | None:
        if payload is None:
            return None
        source = component.blob_storage.pop(payload.id, None) if payload.id is not None else payload
        layers = (component.convert_and_format_image(layer) for layer in (source.layers if source else []))
        return [layer for layer in layers if layer is not None]

    component.preprocess = painted_layers
    return component


def lambda_sliders(defaults: dict, ranges: dict) -> dict:
    """A slider per λ over log10 λ (equal travel per decade), with a box beside it that reads λ itself."""
    sliders = {}
    for n in LAMBDA_NAMES:
        with gr.Row(equal_height=True):
            sliders[n] = gr.Slider(math.log10(ranges[n][0]), math.log10(ranges[n][1]), value=math.log10(defaults[n]), step=0.01,
                                   label=f"λ {n} (log scale)", scale=4, info=f"{LAMBDA_INFO[n]} ({ranges[n][0]:g} – {ranges[n][1]:g})",
                                   elem_id=f"lambda_{n}", elem_classes="lambda-slider")
            readout = gr.Number(defaults[n], label=f"λ {n}", interactive=False, scale=1, min_width=90, elem_id=f"lambda_{n}_value")
        sliders[n].change(None, sliders[n], readout, js="(v) => Number((10 ** v).toPrecision(3))", api_visibility="private")
    return sliders


def style_mix(max_styles: int) -> tuple:
    """The "Mix styles" accordion -> (the first style's weight, the further styles' uploaders, their weights); a slot
    appears once the one before it is used."""
    with gr.Accordion("Mix styles", open=False, elem_id="mix"):
        gr.Markdown("Up to four paintings, mixed in the model's style statistics and attention by these weights.")
        weight_1 = gr.Slider(0, 1, value=1.0, step=0.05, label="Weight of the style image above", elem_id="weight_1")
        with gr.Row():
            slots, weights, columns = [], [], []
            for k in range(2, max_styles + 1):
                with gr.Column(visible=k == 2, min_width=160) as column:
                    slots.append(image_upload(f"Style {k}", f"style_{k}"))
                    weights.append(gr.Slider(0, 1, value=1.0, step=0.05, label=f"Weight of style {k}", elem_id=f"weight_{k}"))
                columns.append(column)
        for slot, following in zip(slots, columns[1:]):
            slot.change(lambda image: gr.Column(visible=image is not None), slot, following, api_visibility="private")
    return weight_1, slots, weights


def video_inputs(max_seconds: float, sides: list[int], default_side: int) -> tuple:
    """The Video tab -> (clip, painted clip, size, Stylize video, Stop, summary). Videos pass through as files, as
    uploaded: no conversion (PyAV reads every common container)."""
    with gr.Row():
        clip = gr.Video(label=f"Clip (mp4, mov, webm, mkv, gif; up to {max_seconds:g} s; sound kept)", sources=["upload"],
                        elem_id="clip")
        painted = gr.Video(label="Painted clip", interactive=False, elem_id="painted_clip")
    with gr.Row(equal_height=True):
        side = gr.Dropdown(sides, value=default_side, label="Video size (long side, px)", elem_id="clip_side")
        run = gr.Button("Stylize video", variant="primary", elem_id="run_video")
        stop = gr.Button("Stop", variant="stop", elem_id="stop_video")
    return clip, painted, side, run, stop, gr.Markdown(elem_id="clip_info")


def paint_regions() -> tuple:
    """The "Paint regions" accordion -> (the brush over the photo, a mask upload, the style outside the region)."""
    with gr.Accordion("Paint regions", open=False, elem_id="regions"):
        gr.Markdown("Paint over the photo where the style goes (or upload a mask, white = style). Unpainted parts keep "
                    "the photo, or take the painting below. Press Stylize when done.")
        with gr.Row():
            return (region_painter("Paint where the style goes", "region"), image_upload("…or upload a mask", "mask"),
                    image_upload("Style outside the painted region (empty: keep the photo)", "outside_style"))


def paint_harder(seconds: float, max_seconds: float) -> tuple:
    """-> (its seconds, Paint harder, Stop)."""
    budget = gr.Slider(1, max_seconds, value=seconds, step=1, label="Paint harder for (seconds)", elem_id="refine_seconds",
                       info="optimises the picture with exactly these λ, critic included; Stop keeps the picture so far. "
                            "For a bolder painting raise λ style (or lower λ content) first")
    with gr.Row():
        return budget, gr.Button("Paint harder", elem_id="refine"), gr.Button("Stop", variant="stop", elem_id="stop")


def api_inputs(defaults: dict, ranges: dict, seconds: float, max_seconds: float) -> tuple:
    """The API's own inputs, hidden on the page: λ itself as named parameters (view_api lists them with their defaults),
    refine's seconds and steps, a mask file -> (λ inputs by name, seconds, steps, mask, the stylize and refine buttons)."""
    with gr.Row(visible=False):
        lambdas = {f"lambda_{n}": gr.Number(defaults[n], label=f"lambda_{n}", minimum=ranges[n][0], maximum=ranges[n][1])
                   for n in LAMBDA_NAMES}
        return (lambdas, gr.Number(seconds, label="seconds", minimum=0, maximum=max_seconds),
                gr.Number(0, label="steps", minimum=0, precision=0), image_upload("mask", "api_mask"), gr.Button(), gr.Button())
