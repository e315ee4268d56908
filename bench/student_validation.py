"""Student checkpoints side by side on the validation pairs (held-out, never the test pairs of bench/quality.py), each
beside the embedded teacher at its default λ: content and style distances, P(painting) from the independent probe,
and a sheet of their pictures. For choosing between distillation runs; the test-pair numbers are bench/quality.py's.
Not run by pytest.

    python bench/student_validation.py weights/fast runs/fast/fast          # a run's student against the shipped one
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from artprobe import ArtProbe
from common import REPO, RESULTS, Metrics, encoded_pairs, fp32_stylizer, markdown_table, score, training_images, validation_images

from stylize.checkpoint import STUDENT_DIR
from stylize.images import paste_grid, to_pil

SHEET_PICTURES = 8  # the first pairs' pictures, one row per model


def beside_the_teacher(student: Path, folder: Path) -> Path:
    """A model folder holding the embedded teacher's files (linked) and `student` as its fast model."""
    folder.mkdir()
    for item in (REPO / "weights").iterdir():
        (folder / item.name).symlink_to(student.resolve() if item.name == STUDENT_DIR else item.resolve())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("students", nargs="+", type=Path, help="student folders (config.json + weights), e.g. runs/X/fast")
    parser.add_argument("--contents", type=int, default=4)
    parser.add_argument("--styles", type=int, default=4)
    parser.add_argument("--side", type=int, default=256, help="long side of every picture (default %(default)s)")
    parser.add_argument("--pairs", choices=("validation", "training"), default="validation",
                        help="held-out pairs, or pairs of files the students trained on: a model that fits those far "
                             "better than unseen ones is short of data, one that fits both alike is short of training")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    torch.set_num_threads(2)
    probe = ArtProbe.load()
    images = validation_images if args.pairs == "validation" else training_images
    _, _, contents, styles = images(args.contents, args.styles, args.side)
    teacher = fp32_stylizer(variant="quality")
    metrics = Metrics(teacher.model("quality").encoder)
    rows, pictures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("teacher (quality)", teacher)]
        for i, student in enumerate(args.students):
            stylizer = fp32_stylizer(str(beside_the_teacher(student, Path(tmp) / str(i))), variant="fast")
            assert stylizer.variant == "fast", f"{student} is not a student of the embedded teacher (see the warning above)"
            models.append((f"{student} (step {json.loads((student / 'config.json').read_text())['training']['step']})", stylizer))
        for name, stylizer in models:
            scores, outputs = score(stylizer, metrics, encoded_pairs(stylizer, contents, styles), {}, probe)
            rows.append({"model": name, **scores})
            pictures.append([to_pil(o) for o in outputs[:SHEET_PICTURES]])
            print(rows[-1], flush=True)
    (RESULTS / f"student_validation{args.tag}.json").write_text(json.dumps(rows, indent=2))
    paste_grid(pictures, (args.side, args.side)).save(RESULTS / f"student_validation{args.tag}.jpg", quality=88)
    lines = [f"{args.pairs.capitalize()} pairs ({args.contents} photos × {args.styles} paintings, {args.side} px, the teacher's default λ; "
             f"`python bench/student_validation.py {' '.join(sys.argv[1:])}`). Sheet: "
             f"`student_validation{args.tag}.jpg`, one row per model in this order.", "",
             *markdown_table(["model", "content (relu4_1)", "Gram", "mean/std", "P(painting)"],
                             [[r["model"], f"{r['content_relu4_1']:.2f}", f"{r['style_gram']:.2f}", f"{r['style_mean_std']:.2f}",
                               f"{r['p_painting']:.3f}"] for r in rows])]
    (RESULTS / f"student_validation{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
