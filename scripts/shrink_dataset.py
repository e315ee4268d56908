"""Copy image folders with the short side reduced to --side px (JPEG), leaving out held-out files.

Used to carry the training set to a lent GPU machine and to speed up loading. A device call carries at most 64 MiB,
code and weights (~34 MB) included. Every training photo and painting fits as WebP (31 MB):
    python -m scripts.shrink_dataset ../shared/data .gpu/paint --side 240 --style-side 224 --quality 50 --format webp --holdout bench/holdout.txt
or as JPEG every 2nd photo (--content-offset 1: the other half):
    python -m scripts.shrink_dataset ../shared/data .gpu/half --side 256 --quality 80 --content-every 2 --holdout bench/holdout.txt
"""
import argparse
from pathlib import Path

from PIL import Image

from stylize.images import ImageInputError, list_images, load_image, read_name_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="folder holding content/ and style/")
    parser.add_argument("dst", type=Path)
    parser.add_argument("--side", type=int, default=296, help="short side after resizing (default %(default)s)")
    parser.add_argument("--style-side", type=int, help="short side of the paintings (default: --side)")
    parser.add_argument("--quality", type=int, default=88, help="JPEG or WebP quality (default %(default)s)")
    parser.add_argument("--format", choices=("jpg", "webp"), default="jpg",
                        help="webp packs about a third smaller at equal quality (default %(default)s)")
    parser.add_argument("--holdout", type=Path, help="file names to leave out, one per line")
    parser.add_argument("--content-every", type=int, default=1, help="keep every Nth photo (default: all)")
    parser.add_argument("--content-offset", type=int, default=0,
                        help="start at this photo, so offsets 0..N-1 of --content-every N split the set (default 0)")
    args = parser.parse_args()
    exclude = set(read_name_list(args.holdout)) if args.holdout else set()
    for sub in ("content", "style"):
        out_dir = args.dst / sub
        out_dir.mkdir(parents=True, exist_ok=True)
        kept = 0
        paths = [p for p in list_images(args.src / sub) if p.name not in exclude]
        for path in paths[args.content_offset :: args.content_every] if sub == "content" else paths:
            try:
                image = load_image(path, path.name)
            except ImageInputError as err:
                print("skip", err)
                continue
            scale = (args.style_side or args.side if sub == "style" else args.side) / min(image.size)
            if scale < 1:
                image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            image.save(out_dir / f"{path.stem}.{args.format}", quality=args.quality, method=6 if args.format == "webp" else 0)
            kept += 1
        print(sub, kept)


if __name__ == "__main__":
    main()
