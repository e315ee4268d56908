"""Capacity or training length: what keeps the student from its teacher's style? Each student is fitted alone to the
teacher's pictures of the validation pairs (the teacher's default λ, full strength; train/distill.py's loss and weights,
Adam at a constant rate), and its distances on those same pairs are read as it goes. A student that cannot fit a
handful of fixed pictures to its teacher's style distances will not reach them on unseen pairs with any length of
distillation; one that can is held back by its training. Not run by pytest.

    python bench/student_capacity.py weights/fast --steps 300            # the installed student
    python bench/student_capacity.py weights/fast fresh:16,32,64 fresh:32,64,128 --tag _widths
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

from artprobe import ArtProbe
from common import REPO, RESULTS, Metrics, markdown_table, mean_distances, validation_images

from stylize.checkpoint import EMBEDDED_DIR, load_model_folder, load_student
from stylize.images import to_tensor
from stylize.lambda_spec import LambdaSpec
from stylize.student import Student

sys.path.insert(0, str(REPO))  # train/ is a folder of the repository, not an installed package
from train.distill import DistillConfig, distillation_loss, teacher_pass  # noqa: E402

FRESH = "fresh:"


def student_for(name: str, ranges: dict) -> Student:
    """A student folder's weights, or `fresh:W0,W1,W2`: a new student of those widths (train/distill.py's init)."""
    if name.startswith(FRESH):
        torch.manual_seed(0)
        return Student(widths=tuple(int(w) for w in name.removeprefix(FRESH).split(",")), lambda_ranges=ranges)
    return load_student(Path(name))[0]


def multiple_of_8(image):
    return image.crop((0, 0, image.width // 8 * 8, image.height // 8 * 8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("students", nargs="+", help="student folders (e.g. weights/fast) or fresh:W0,W1,W2")
    parser.add_argument("--contents", type=int, default=4)
    parser.add_argument("--styles", type=int, default=4)
    parser.add_argument("--side", type=int, default=128, help="long side of every picture (default %(default)s)")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps, each over every pair (default %(default)s)")
    parser.add_argument("--read-every", type=int, default=50, help="steps between readings (default %(default)s)")
    parser.add_argument("--lr", type=float, default=3e-4, help="constant Adam learning rate (default %(default)s)")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    torch.set_num_threads(2)
    probe = ArtProbe.load()
    teacher, teacher_config = load_model_folder(EMBEDDED_DIR)
    teacher.requires_grad_(False)
    spec = LambdaSpec.from_config(teacher_config["lambdas"])
    lambdas, strength = torch.tensor([spec.resolve()]), torch.ones(1)
    cfg = DistillConfig()
    metrics = Metrics(teacher.encoder)
    _, _, contents, styles = validation_images(args.contents, args.styles, args.side)
    pairs = []
    for content in contents:
        for style in styles:
            c, s = to_tensor(multiple_of_8(content)), to_tensor(multiple_of_8(style))
            pairs.append((c, s, teacher_pass(teacher, c, s, lambdas, strength)))
    photo_and_painting = [(c, s) for c, s, _ in pairs]
    rows = [{"model": "teacher (quality)", "step": "",
             **mean_distances([targets[0] for _, _, targets in pairs], photo_and_painting, metrics, probe)}]
    print(rows[-1], flush=True)
    for name in args.students:
        student = student_for(name, spec.ranges)
        optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
        started = time.time()
        for step in range(args.steps + 1):
            if step % args.read_every == 0 or step == args.steps:
                with torch.no_grad():
                    outputs = [student(c, s, lambdas, strength) for c, s, _ in pairs]
                rows.append({"model": name, "step": step, "seconds": round(time.time() - started),
                             **mean_distances(outputs, photo_and_painting, metrics, probe)})
                print(rows[-1], flush=True)
            if step == args.steps:
                break
            optimizer.zero_grad(set_to_none=True)
            for c, s, targets in pairs:
                loss, _ = distillation_loss(cfg, teacher, spec.normalizers, student(c, s, lambdas, strength), targets, lambdas)
                (loss / len(pairs)).backward()
            optimizer.step()
    (RESULTS / f"student_capacity{args.tag}.json").write_text(json.dumps(rows, indent=2))
    lines = [f"Each student fitted to the teacher's pictures of the validation pairs ({args.contents} photos × {args.styles} "
             f"paintings, {args.side} px, default λ, full strength; train/distill.py's loss, Adam at {args.lr:g}), read on "
             f"those same pairs (`python bench/student_capacity.py {' '.join(sys.argv[1:])}`).", "",
             *markdown_table(["model", "step", "content (relu4_1)", "Gram", "mean/std", "P(painting)"],
                             [[r["model"], r["step"], f"{r['content_relu4_1']:.2f}", f"{r['style_gram']:.2f}",
                               f"{r['style_mean_std']:.2f}", f"{r['p_painting']:.3f}"] for r in rows])]
    (RESULTS / f"student_capacity{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
