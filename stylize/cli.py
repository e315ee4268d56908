"""stylize CONTENT STYLE -o OUT [flags]   (or: python -m stylize ...)"""
import argparse
import re
import sys
import time
import warnings
from pathlib import Path

from .lambda_spec import LAMBDA_NAMES

# argparse reads "-inf", "-nan" or "-1e3" after a flag as another flag; such values are joined to their flag
SIGNED_NUMBER = re.compile(r"^-(inf(inity)?|nan|\d+(\.\d*)?(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?)$", re.IGNORECASE)
NUMBER_FLAGS = {f"--lambda-{name}" for name in LAMBDA_NAMES} | {"--strength", "--max-side", "--refine"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylize", description="Stylise a photo with any painting.")
    parser.add_argument("content", type=Path, help="content photo")
    parser.add_argument("style", type=Path, help="style image (any painting)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image path (PNG or JPEG by suffix)")
    parser.add_argument("--max-side", type=int, default=1024,
                        help="the content is downscaled to this long side, 64 to 2048 (larger is clamped; default %(default)s)")
    for name in LAMBDA_NAMES:
        parser.add_argument(f"--lambda-{name}", type=float, default=None,
                            help=f"{name} loss weight (default: the checkpoint's; clamped to its trained range)")
    parser.add_argument("--strength", type=float, default=1.0, help="style strength in [0, 1]; 0 reproduces the content (default %(default)s)")
    parser.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    parser.add_argument("--refine", type=int, default=0, metavar="N", help="optimise the output for N steps with exactly these lambdas (default 0)")
    parser.add_argument("--model", default=None, help="model folder or Hub repo id (default: the embedded weights/)")
    parser.add_argument("--variant", choices=("auto", "fast", "quality"), default="quality",
                        help="fast: the distilled student; quality: the VGG generator; auto: fast on a CPU (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default %(default)s)")
    return parser


def join_signed_numbers(argv: list[str]) -> list[str]:
    """["--lambda-tv", "-inf"] -> ["--lambda-tv=-inf"], so that the value reaches the range check."""
    out = []
    for arg in argv:
        if out and out[-1] in NUMBER_FLAGS and SIGNED_NUMBER.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(join_signed_numbers(sys.argv[1:] if argv is None else list(argv)))
    from .checkpoint import CheckpointError
    from .images import ImageInputError
    from .pipeline import Stylizer

    started = time.perf_counter()
    lambdas = {n: getattr(args, f"lambda_{n}") for n in LAMBDA_NAMES if getattr(args, f"lambda_{n}") is not None}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stylizer = Stylizer.from_pretrained(args.model, variant=args.variant, device=args.device)
            image = stylizer(args.content, args.style, lambdas=lambdas, strength=args.strength,
                             preserve_color=args.preserve_color, max_side=args.max_side, refine_steps=args.refine)
        for warning in caught:  # e.g. a lambda clamped to its trained range
            print(f"note: {warning.message}", file=sys.stderr)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        image.save(args.output)
    except (ImageInputError, CheckpointError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.output}  ({image.width}x{image.height}, {time.perf_counter() - started:.2f} s on {stylizer.device}, "
          f"{stylizer.variant} model)")
    return 0
