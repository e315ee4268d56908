"""Regrow a student's silent 1/8 level without changing its pictures, so that a continued distillation can train it.

    python -m scripts.regrow_student_eighth weights/fast runs/regrow/init
    python -m train.distill ... --init-from runs/regrow/init --lr 3e-4

The students trained with plain ReLUs silenced their 1/8 level for good: its upsampling conv's outputs were negative on
every input, so the level passed nothing and learned nothing (docs/history.md, 2026-11-29 "silent units"). As ReDo
(Sokar et al., 2023) recycles dormant units, this gives the level fresh weights (both encoders' deepest stage and the
1/8 FiLM blocks, with learnable slopes of 0.2) and zeroes what reads from it: the upsampling conv (whose slope becomes
0.2, so its zero output still passes a gradient) and the style code's inputs from the 1/8 statistics, their old, nearly
constant contribution folded into the code's bias. The pictures stay as they were; the first steps grow the zeroed
weights, and the level starts to count.
"""
import argparse
import sys
from pathlib import Path

import torch

from stylize.checkpoint import load_student, save_student_folder
from stylize.student import Student

REGROWN = ("content_encoder.to_eighth", "content_encoder.block", "style_encoder.to_eighth", "style_encoder.block",
           "eighth_blocks")
NEW_SLOPE = 0.2


@torch.no_grad()
def regrow_eighth(student: Student, seed: int = 0) -> Student:
    """`student` with its 1/8 level re-initialised and cut off from the picture, in place."""
    torch.manual_seed(seed)
    architecture = {k: v for k, v in student.config.items() if k != "negative_slope"}
    fresh = Student(**architecture, negative_slope=NEW_SLOPE).state_dict()
    grey = torch.full((1, 3, 256, 256), 0.5)
    old_inputs = Student.style_code_inputs(student.encode_style(grey).stats)[0]
    state = student.state_dict()
    for name in state:
        if name.startswith(REGROWN):
            state[name] = fresh[name].to(state[name].dtype)
    w0, w1, _ = student.config["widths"]
    eighth_inputs = slice(2 * (w0 + w1), None)
    code_weight = state["style_code.0.weight"]
    state["style_code.0.bias"] += code_weight[:, eighth_inputs] @ old_inputs[eighth_inputs].to(code_weight.dtype)
    code_weight[:, eighth_inputs] = 0
    state["quarter_activation.weight"].fill_(NEW_SLOPE)
    student.load_state_dict(state)
    student.cut_eighth_level()
    return student


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student", type=Path, help="student folder (config.json + student.safetensors), e.g. weights/fast")
    parser.add_argument("out", type=Path, help="folder for the regrown student, for train.distill --init-from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh weights (default %(default)s)")
    args = parser.parse_args(argv)
    student, config = load_student(args.student)
    student = student.float()
    probe = (torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(1)),
             torch.rand(2, 3, 128, 96, generator=torch.Generator().manual_seed(2)), torch.ones(2, 5))
    with torch.no_grad():
        before = student(*probe)
        after = regrow_eighth(student, args.seed)(*probe)
    change = float((after - before).abs().max())
    print(f"largest change of a pixel on random inputs: {change:.2e} (0 where the level was silent)")
    if change > 1e-3:
        print(f"{args.student}'s 1/8 level is not silent: regrowing it changes the pictures", file=sys.stderr)
        return 1
    save_student_folder(args.out, student, config["teacher_generator_sha256"], {**config["training"], "regrown": "1/8 level"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
