"""How much of what the teacher knows about a painting reaches the fast student: the share of the variance of a
painting's VGG statistics (mean and std per channel at each tap, what the teacher's AdaIN and style loss read) that a
ridge regression recovers from the student's style statistics (its three AdaIN levels), against a random untrained
student and the painting's colour statistics. Paintings of the training set, 3/4 to fit, 1/4 to score. Not run by pytest.

    python bench/style_information.py        # writes bench/results/style_information.{json,md}
"""
import json
import random

import torch

from common import DATA, RESULTS, held_out_names, load, markdown_table

from stylize.checkpoint import EMBEDDED_DIR, STUDENT_DIR, architecture, load_student
from stylize.encoder import TAP_CHANNELS, TAPS, VGGEncoder
from stylize.functional import mean_std
from stylize.images import list_images, to_tensor
from stylize.student import Student

PAINTINGS = 1600
SIDE = 256
RIDGE = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def flattened(stats) -> torch.Tensor:
    """(mean, std) pairs -> one row of numbers per image."""
    return torch.cat([t.flatten(1) for pair in stats for t in pair], dim=1)


def recovered_share(x: torch.Tensor, y: torch.Tensor, fit: int) -> float:
    """1 - residual / total variance of y on the rows after `fit`, with the best of the RIDGE penalties (chosen on those
    rows: the same slight optimism for every description)."""
    x = (x - x[:fit].mean(0)) / (x[:fit].std(0) + 1e-8)
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    y_mean = y[:fit].mean(0)
    best = 1.0
    for penalty in RIDGE:
        a = x[:fit]
        w = torch.linalg.solve(a.T @ a + penalty * fit * torch.eye(a.shape[1], dtype=a.dtype), a.T @ (y[:fit] - y_mean))
        best = min(best, (((y[fit:] - x[fit:] @ w - y_mean) ** 2).sum() / ((y[fit:] - y_mean) ** 2).sum()).item())
    return 1 - best


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    held_out = set(held_out_names("style"))
    paths = [p for p in list_images(DATA / "style") if p.name not in held_out]
    random.Random(0).shuffle(paths)
    paths = paths[:PAINTINGS]
    vgg = VGGEncoder.from_file(EMBEDDED_DIR / "vgg16_imagenet.safetensors")
    shipped, config = load_student(EMBEDDED_DIR / STUDENT_DIR)
    students = {"shipped student": shipped.float(), "untrained student": Student(**architecture(config["student"])).eval()}
    descriptions = {name: [] for name in ("colour", *students, "vgg")}
    with torch.no_grad():
        for path in paths:
            image = to_tensor(load(path, SIDE))
            descriptions["colour"].append(flattened([mean_std(image)]))
            for name, student in students.items():
                descriptions[name].append(flattened(student.encode_style(image).stats))
            descriptions["vgg"].append(flattened(map(mean_std, vgg(image))))
    data = {name: torch.cat(d).double() for name, d in descriptions.items()}
    fit = len(paths) * 3 // 4
    bounds = torch.tensor([0, *TAP_CHANNELS]).mul(2).cumsum(0).tolist()
    results = []
    for name in ("colour", *students):
        x = data[name]
        shares = [recovered_share(x, data["vgg"][:, lo:hi], fit) for lo, hi in zip(bounds, bounds[1:])]
        results.append({"from": name, "inputs": x.shape[1], "all taps": recovered_share(x, data["vgg"], fit),
                        **dict(zip(TAPS, shares))})
        print(results[-1], flush=True)
    (RESULTS / "style_information.json").write_text(json.dumps(results, indent=2))
    lines = [f"Share of the variance of a painting's VGG statistics recovered linearly (ridge) from each description, "
             f"{len(paths) - fit} training-set paintings scored after fitting on {fit}, {SIDE} px "
             "(`python bench/style_information.py`):", "",
             *markdown_table(["from", "numbers", "all taps", *TAPS],
                             [[r["from"], r["inputs"], f"{r['all taps']:.3f}", *(f"{r[t]:.3f}" for t in TAPS)] for r in results])]
    (RESULTS / "style_information.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
