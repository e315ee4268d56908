"""The app's Gradio inputs that hand on what the pipeline reads, undecoded: an uploader's file path, a region
painter's layers."""
import gradio as gr


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
