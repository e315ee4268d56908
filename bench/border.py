"""How far the encoders' zero padding paints into a picture's edges, by the margin the photo is reflected outwards before
it is encoded (stylize.pipeline.CONTENT_MARGIN; the margin is cut from the picture). Each picture is compared with the
one painted with a 48 px margin, where no edge reaches the picture: in the outer 24 px band and in the interior, in
grey levels. The interior moves too (the reflected margin enters the photo's statistics); what the band moves beyond
it is the frame. Validation pairs, both models, fp32. Not run by pytest.

    python bench/border.py        # writes bench/results/border.md
"""
import argparse

import torch

from artprobe import ArtProbe
from common import RESULTS, Metrics, cpu_name, fp32_stylizer, markdown_table, mean_distances, validation_images

from stylize.images import to_tensor
from stylize.pipeline import CONTENT_MARGIN, with_margin

MARGINS = (0, 8, 16, 24, 32)
REFERENCE_MARGIN = 48
BAND = 24


@torch.no_grad()
def painted(model, photo: torch.Tensor, style_encoding, lambdas: torch.Tensor, margin: int) -> torch.Tensor:
    h, w = photo.shape[-2:]
    picture = model.decode(model.encode_content(with_margin(photo, margin)), style_encoding, lambdas, 1.0).float()
    return picture[..., margin:margin + h, margin:margin + w]


def edge_and_interior(picture: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    off = (picture - reference).abs().mean(1)[0] * 255
    band = torch.ones_like(off, dtype=torch.bool)
    band[BAND:-BAND, BAND:-BAND] = False
    return off[band].mean().item(), off[~band].mean().item()


def with_band_of(picture: torch.Tensor, band_from: torch.Tensor) -> torch.Tensor:
    """`picture` with its outer BAND px replaced by `band_from`'s."""
    mixed = band_from.clone()
    mixed[..., BAND:-BAND, BAND:-BAND] = picture[..., BAND:-BAND, BAND:-BAND]
    return mixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=int, default=4)
    parser.add_argument("--styles", type=int, default=4)
    parser.add_argument("--side", type=int, default=512)
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
             "", *markdown_table(["model", "margin", "content relu4_1", "style Gram", "style mean/std", "P(painting)"], measured)]
    (RESULTS / "border.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
