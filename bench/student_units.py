"""Which of a student's units are silent: per activation layer, the share of channels whose input is never positive on
the validation pairs (a ReLU's output and gradient are then 0 there for good), and the share of all conv weights that no
pair sends a gradient to. Not run by pytest.

    python bench/student_units.py weights/fast runs/X/fast
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn

from common import RESULTS, markdown_table, validation_images

from stylize.checkpoint import EMBEDDED_DIR, load_student
from stylize.images import to_tensor
from stylize.lambda_spec import LambdaSpec


def silent_units(student: nn.Module, contents: list, styles: list, lambdas: torch.Tensor) -> dict:
    activations = {name: module for name, module in student.named_modules() if isinstance(module, nn.PReLU)}
    peaks = {name: None for name in activations}

    def record(name):
        def hook(_module, inputs):
            peak = inputs[0].detach().amax(dim=(0, 2, 3))
            peaks[name] = peak if peaks[name] is None else torch.maximum(peaks[name], peak)
        return hook

    handles = [module.register_forward_pre_hook(record(name)) for name, module in activations.items()]
    student.zero_grad(set_to_none=True)
    for content in contents:
        for style in styles:
            student(content, style, lambdas).mean().backward()
    for handle in handles:
        handle.remove()
    # at full strength the photo's 1/2-resolution skip is off by design (grad None): not counted
    convs = [p for p in student.parameters() if p.dim() == 4 and p.grad is not None]
    without_gradient = sum(int((p.grad.flatten(1).abs().sum(1) == 0).sum()) * p[0].numel() for p in convs)
    return {
        "layers": {name: {"channels": peak.numel(), "never_positive": int((peak <= 0).sum()),
                          "mean_abs_slope": float(activations[name].weight.detach().abs().mean())} for name, peak in peaks.items()},
        "conv_weights": sum(p.numel() for p in convs),
        "conv_weights_without_gradient": without_gradient,
    }


@torch.no_grad()
def eighth_level_share(student: nn.Module, contents: list, styles: list, lambdas: torch.Tensor) -> float:
    """Mean |change| in grey levels when the 1/8 level's way out (the upsampling conv) is cut: what that level paints."""
    pairs = [(content, style) for content in contents for style in styles]
    with_level = [student(content, style, lambdas) for content, style in pairs]
    cut = copy.deepcopy(student)
    cut.cut_eighth_level()
    return 255 * sum(float((a - cut(c, s, lambdas)).abs().mean()) for a, (c, s) in zip(with_level, pairs)) / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("students", nargs="+", type=Path, help="student folders (config.json + weights), e.g. runs/X/fast")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    torch.set_num_threads(2)
    contents, styles = ([to_tensor(image) for image in images] for images in validation_images(4, 4, 256)[2:])
    lambdas = torch.tensor([LambdaSpec.from_config(json.loads((EMBEDDED_DIR / "config.json").read_text())["lambdas"]).resolve()])
    results = {}
    for folder in args.students:
        student, config = load_student(folder)
        student = student.float()
        results[f"{folder} (step {config['training']['step']})"] = {
            **silent_units(student, contents, styles, lambdas), "eighth_level_grey_levels": eighth_level_share(student, contents, styles, lambdas)}
    (RESULTS / f"student_units{args.tag}.json").write_text(json.dumps(results, indent=2))
    names = list(next(iter(results.values()))["layers"])
    header = ["layer", *(f"{model}: never positive (mean \\|slope\\|)" for model in results)]
    rows = [[name, *(f"{r['layers'][name]['never_positive']}/{r['layers'][name]['channels']} ({r['layers'][name]['mean_abs_slope']:.3f})"
                     for r in results.values())] for name in names]
    rows.append(["conv weights without a gradient",
                 *(f"{r['conv_weights_without_gradient'] / r['conv_weights']:.0%} of {r['conv_weights']:,}" for r in results.values())])
    rows.append(["what the 1/8 level paints: mean \\|change\\| without it (grey levels)",
                 *(f"{r['eighth_level_grey_levels']:.2f}" for r in results.values())])
    lines = [f"Silent units on the validation pairs (4 photos × 4 paintings, 256 px, default λ; "
             f"`python bench/student_units.py {' '.join(sys.argv[1:])}`). A channel never positive passes nothing and no "
             "gradient behind a ReLU (slope 0); a learnable slope still passes both.", "", *markdown_table(header, rows)]
    (RESULTS / f"student_units{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
