"""Record what the embedded models paint on a few example pairs, as the reference tests/test_default_model.py compares with.

    python -m scripts.record_reference_outputs            # write tests/reference/*.png (after a deliberate model change)
    python -m scripts.record_reference_outputs --check    # print the float outputs' sha256, compare the PNGs, write nothing

A refactor must leave these identical (on another CPU a rare value may round one grey level over: the test allows
that); a new default model re-records them in the same commit as its weights.
"""
import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylize.images import to_pil
from stylize.pipeline import Stylizer

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO / "tests" / "reference"
MAX_SIDE = 160
# (content, style, lambdas, strength): the defaults, a slider move, and the strength slider
CASES = {
    "astronaut_night_cafe_default": ("deb-skimage-astronaut.jpg", "deb-gcompris-van_gogh_the_night_cafe.jpg", {}, 1.0),
    "chelsea_great_wave_style30": ("deb-skimage-chelsea.jpg", "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg",
                                   {"style": 30.0, "content": 0.1}, 1.0),
    "coffee_harvesters_half": ("deb-skimage-coffee.jpg", "deb-gcompris-brugel_the_harvesters.jpg", {"tv": 0.5}, 0.5),
}


def reference_outputs() -> dict[str, torch.Tensor]:
    """name_variant -> the float output (1, 3, H, W) of the embedded model on CPU, fp32."""
    torch.set_num_threads(2)
    stylizer = Stylizer.from_pretrained(device="cpu", variant="fast", dtype=torch.float32)
    outputs = {}
    for name, (content, style, lambdas, strength) in CASES.items():
        content_image = Image.open(REPO / "examples" / "content" / content).convert("RGB")
        content_image.thumbnail((MAX_SIDE, MAX_SIDE))
        style_image = Image.open(REPO / "examples" / "style" / style).convert("RGB")
        for variant in ("quality", "fast"):
            c_enc = stylizer.encode_content(content_image, variant)
            s_enc = stylizer.encode_style(style_image, variant)
            outputs[f"{name}_{variant}"] = stylizer.stylize_tensor(c_enc, s_enc, stylizer.resolve_lambdas(lambdas),
                                                                   strength, variant)
    return outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the recorded PNGs and print hashes; write nothing")
    args = parser.parse_args(argv)
    differing = 0
    for name, output in reference_outputs().items():
        digest = hashlib.sha256(output.float().contiguous().numpy().tobytes()).hexdigest()[:16]
        path = REFERENCE_DIR / f"{name}.png"
        if args.check:
            same = path.exists() and np.array_equal(np.asarray(Image.open(path)), np.asarray(to_pil(output)))
            differing += not same
            print(f"{name}: float sha256 {digest}, PNG {'identical' if same else 'DIFFERS'}")
        else:
            REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
            to_pil(output).save(path)
            print(f"{name}: float sha256 {digest} -> {path.relative_to(REPO)}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
