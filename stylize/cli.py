"""stylize CONTENT STYLE -o OUT [flags]   (or: python -m stylize ...)

CONTENT and STYLE may be files, folders or globs: with more than one of either, OUT is a folder that receives every pair
as CONTENT__STYLE.png, with one model load and each photo and painting encoded once. Every picture appears under its
name only once it is complete (written beside it, then renamed); a photo or painting is never written over.
"""
import argparse
import glob
import os
import re
import sys
import time
import warnings
from pathlib import Path

from .images import list_images
from .lambda_spec import LAMBDA_NAMES

# argparse reads "-inf", "-nan" or "-1e3" after a flag as another flag; such values are joined to their flag
SIGNED_NUMBER = re.compile(r"^-(inf(inity)?|nan|\d+(\.\d*)?(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?)$", re.IGNORECASE)
NUMBER_FLAGS = {f"--lambda-{name}" for name in LAMBDA_NAMES} | {"--strength", "--max-side", "--refine", "--refine-seconds",
                                                                  "--stroke-scale"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif"}  # what a batch picks up


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("content", help="content photo: a file, a folder or a glob ('photos/*.jpg')")
    parser.add_argument("style", nargs="?", help="style image (any painting): a file, a folder or a glob; or use --style")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output image (PNG, JPEG or WebP by suffix); a folder when CONTENT or STYLE holds several "
                             "images (a batch run again replaces the pictures it wrote before: re-running with new settings is what a "
                             "batch is re-run for; an input image is never written over)")
    parser.add_argument("--style", dest="mix", action="append", metavar="IMAGE",
                        help="a style of a mix, up to 4 times (in place of STYLE): --style a.jpg --style b.jpg")
    parser.add_argument("--style-weights", type=float, nargs="+", metavar="W",
                        help="the mix's weights, one per --style (default: equal; normalised to sum 1)")
    parser.add_argument("--mask", help="region mask: the style applies where it is white (or opaque); resized to the photo")
    parser.add_argument("--outside-style", help="with --mask: this painting styles the rest instead of keeping the photo")
    parser.add_argument("--stroke-scale", type=float, default=1.0,
                        help="brush strokes larger (up to 2) or smaller (down to 0.5) at the same output size (default %(default)s)")
    parser.add_argument("--max-side", type=int, default=1024,
                        help="the content is downscaled to this long side, 64 to 8192 (larger is clamped; above 2048 a poster, "
                             "painted in tiles with strokes that grow with it; default %(default)s)")
    for name in LAMBDA_NAMES:
        parser.add_argument(f"--lambda-{name}", type=float, default=None,
                            help=f"{name} loss weight (default: the checkpoint's; clamped to its trained range)")
    parser.add_argument("--strength", type=float, default=1.0, help="style strength in [0, 1]; 0 reproduces the content (default %(default)s)")
    parser.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    parser.add_argument("--refine-seconds", type=float, default=None, metavar="S",
                        help="paint harder: optimize the output with exactly these lambdas for S seconds (15 is a good start)")
    parser.add_argument("--refine", type=int, default=0, metavar="N",
                        help="optimize the output for N steps with exactly these lambdas (with --refine-seconds: whichever ends first)")
    parser.add_argument("--steadiness", type=float, default=None, metavar="K",
                        help="a video: the share in [0, 1] of the last painted frame, moved with the picture, that each frame keeps "
                             "where the picture still matches (less flicker; 0 paints frame by frame; default 0.95)")
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


def expand(source: str) -> tuple[list[Path], bool]:
    """A file, a folder (its images, sorted) or a glob -> (paths, whether it names a set rather than one file)."""
    path = Path(source)
    if path.is_dir():
        return list_images(path, IMAGE_SUFFIXES), True
    if glob.has_magic(source):
        return sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file()), True
    return [path], False


def output_format(path: Path) -> str:
    """The image format `path`'s suffix names, known before any work is done."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give a file name such as {path / 'out.png'}")
    from PIL import Image

    found = Image.registered_extensions().get(path.suffix.lower())
    if found is None:
        raise ValueError(f"unknown output suffix {path.suffix or '(none)'!r} in {path}: end the name in .png, .jpg or .webp")
    return found


def saved(image, path: Path, image_format: str) -> None:
    """PNG at zlib level 1: an 8K poster in 2.3 s instead of 11.7 s at the default level, for 15 % more bytes."""
    image.save(path, format=image_format, **({"compress_level": 1} if image_format == "PNG" else {}))


def file_ids(paths: list) -> set[tuple[int, int]]:
    """(device, inode) of each existing file among `paths` (None and missing ones left out): hard and symbolic links
    to one file count as that file."""
    ids = set()
    for path in paths:
        try:
            stat = os.stat(path) if path is not None else None
        except OSError:
            continue
        if stat is not None:
            ids.add((stat.st_dev, stat.st_ino))
    return ids


def is_one_of(path: Path, ids: set[tuple[int, int]]) -> bool:
    return bool(file_ids([path]) & ids)


def labels(paths: list) -> list[str]:
    """A name part per image: its stem, or where stems repeat its path below the folders' common root with the suffix
    (a.jpg, a.png, sub/a.jpg -> a_jpg, a_png, sub_a_jpg)."""
    stems = [p.stem if p is not None else "mix" for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    root = Path(os.path.commonpath([p.resolve().parent for p in paths]))
    return ["_".join(p.resolve().relative_to(root).parts).replace(".", "_") if stems.count(stem) > 1 else stem
            for p, stem in zip(paths, stems)]


def output_names(contents: list[Path], styles: list) -> list[str]:
    """CONTENT__STYLE.png for every pair, content-major, each name once."""
    names, seen = [], set()
    for content in labels(contents):
        for style in labels(styles):
            name, k = f"{content}__{style}.png", 1
            while name in seen:
                k += 1
                name = f"{content}__{style}-{k}.png"
            seen.add(name)
            names.append(name)
    return names


def main(argv=None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("interrupted: pictures already written are complete; nothing partial was left", file=sys.stderr)
        return 130


def run(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(join_signed_numbers(sys.argv[1:] if argv is None else list(argv)))
    if (args.style is None) == (args.mix is None):
        parser.error("give one STYLE, or the styles of a mix with --style (not both)")
    if args.style_weights is not None and args.mix is None:
        parser.error("--style-weights goes with --style")
    if args.outside_style is not None and args.mask is None:
        parser.error("--outside-style goes with --mask")
    from .checkpoint import CheckpointError, atomic_write
    from .images import ImageInputError
    from .pipeline import Stylizer
    from .video import is_video

    contents, many_contents = expand(args.content)
    styles, many_styles = expand(args.style) if args.style is not None else ([None], False)
    if not contents or not styles:
        print(f"error: no images match {args.content if not contents else args.style}", file=sys.stderr)
        return 1
    lambdas = {n: getattr(args, f"lambda_{n}") for n in LAMBDA_NAMES if getattr(args, f"lambda_{n}") is not None}
    controls = dict(lambdas=lambdas, strength=args.strength, preserve_color=args.preserve_color, max_side=args.max_side,
                    refine_steps=args.refine, refine_seconds=args.refine_seconds, styles=args.mix,
                    style_weights=args.style_weights, mask=args.mask, outside_style=args.outside_style,
                    stroke_scale=args.stroke_scale)
    inputs = file_ids([*contents, *styles, *(args.mix or []), args.mask, args.outside_style])
    started = time.perf_counter()
    try:
        if not (many_contents or many_styles):
            if is_one_of(args.output, inputs):
                raise ValueError(f"-o {args.output} is one of the input images or clips: choose another name, so it is not replaced")
            image_format = None if is_video(contents[0]) else output_format(args.output)
        if args.steadiness is not None and (many_contents or not is_video(contents[0])):
            raise ValueError("--steadiness is for a video: a photo or a batch of photos has no frames to keep steady")
        stylizer = Stylizer.from_pretrained(args.model, variant=args.variant, device=args.device)
        if not many_contents and is_video(contents[0]):
            return video(stylizer, contents[0], styles[0], args.output, controls, args.steadiness, started)
        if many_contents or many_styles:
            return batch(stylizer, contents, styles, args.output, controls, started, (ImageInputError, OSError), inputs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image, refined = single(stylizer, contents[0], styles[0], controls)
        for warning in caught:  # e.g. a lambda clamped to its trained range
            print(f"note: {warning.message}", file=sys.stderr)
        atomic_write(args.output, lambda tmp: saved(image, tmp, image_format))
    except (ImageInputError, CheckpointError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.output}  ({image.width}x{image.height}, {time.perf_counter() - started:.2f} s on {stylizer.device}, "
          f"{stylizer.variant} model{f', {refined} refine steps' if refined else ''})")
    return 0


def single(stylizer, content, style, controls: dict):
    """(the picture, refine steps done); progress bars on a terminal count a poster's tiles and refine's steps."""
    from tqdm import tqdm

    bars = []

    def tile_done(done: int, total: int) -> None:  # only posters call it: no bar for the others
        if not bars:
            bars.append(tqdm(desc="poster tiles", unit="tile", total=total, disable=None, leave=False))
        bars[0].update(done - bars[0].n)

    pictures = stylizer.stylize_steps(content, style, **controls, progress=tile_done)
    image, done = next(pictures), 0
    for bar in bars:
        bar.close()
    if controls["refine_steps"] or controls["refine_seconds"]:
        with tqdm(desc="refine", unit="step", total=controls["refine_steps"] or None, disable=None) as bar:
            for done, image in enumerate(pictures, 1):
                bar.update()
    return image, done


def video(stylizer, clip: Path, style, output: Path, controls: dict, steadiness: float | None, started: float) -> int:
    """A clip painted frame by frame into an .mp4 at `output`, its sound kept; a progress bar counts the frames."""
    from tqdm import tqdm

    unsupported = [flag for flag, key in (("--refine", "refine_steps"), ("--refine-seconds", "refine_seconds"),
                                          ("--mask", "mask")) if controls[key]]
    if unsupported:
        raise ValueError(f"a video takes the sliders' flags and a style or a mix; not {', '.join(unsupported)} (yet)")
    with tqdm(desc="frames", unit="frame", disable=None) as bar:
        def frame_done(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        frames, fps, sound = stylizer.stylize_video(clip, style, output, lambdas=controls["lambdas"], strength=controls["strength"],
                                                    preserve_color=controls["preserve_color"], max_side=controls["max_side"],
                                                    stroke_scale=controls["stroke_scale"], styles=controls["styles"],
                                                    style_weights=controls["style_weights"], progress=frame_done,
                                                    **({} if steadiness is None else {"steadiness": steadiness}))
    seconds = time.perf_counter() - started
    print(f"{output}  ({frames} frames at {fps:g} fps{', sound kept' if sound else ''}; {seconds:.1f} s, {frames / seconds:.1f} frames/s on "
          f"{stylizer.device}, {stylizer.variant} model)")
    return 0


def batch(stylizer, contents: list[Path], styles: list, out_dir: Path, controls: dict, started: float, skippable,
          inputs: set[tuple[int, int]]) -> int:
    """Every (content, style) pair into out_dir under its own name (output_names); an unreadable file costs its pairs
    one line each and the run goes on; a name that is one of the `inputs` (file_ids) is skipped, never written over.
    Exit 1 only when nothing was written."""
    from tqdm import tqdm

    from .checkpoint import atomic_write

    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"-o {out_dir} is a file: a batch writes into a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written, failed, notes = 0, [], set()
    pairs = [(c, s) for c in contents for s in styles]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for (content, style), name in tqdm(list(zip(pairs, output_names(contents, styles))), desc="stylize", unit="image",
                                           disable=None):
            try:
                if is_one_of(out_dir / name, inputs):
                    raise OSError(f"{out_dir / name} is one of the input images and is not written over")
                image = stylizer(content, style, **controls)
                atomic_write(out_dir / name, lambda tmp: saved(image, tmp, "PNG"))
                written += 1
            except skippable as err:
                failed.append(name)
                tqdm.write(f"skipped {content.name} x {style.name if style is not None else 'mix'}: {err}", file=sys.stderr)
        notes.update(str(w.message) for w in caught)
    for note in sorted(notes):
        print(f"note: {note}", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(f"{written} of {len(pairs)} images written to {out_dir} in {seconds:.1f} s ({written / seconds:.2f} images/s on "
          f"{stylizer.device}, {stylizer.variant} model){f'; {len(failed)} skipped' if failed else ''}")
    return 0 if written else 1
