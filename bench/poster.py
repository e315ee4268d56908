"""Posters on this CPU, one run: the CLI at 1, 4, 16 and 33 megapixels (16:9, 7680 x 4320 the last) with both models,
each in its own process (seconds end to end, s/MP, peak RSS), then at 7680 x 4320 the tile seams (gradient across a
seam against the picture's columns and rows) and the stroke size by output size (tests/helpers.texture_frequency of a
central 1024 px crop), a sheet of the whole picture beside 1:1 crops at a tile corner and at the face.

The data holds no photo above 512 px: the input is a held-out portrait (a 16:9 crop) enlarged with Lanczos, so its own
detail is soft and what is fine at 8K is what the model paints.

    python bench/poster.py [--skip-full-detail]   # -> bench/results/poster.{md,json}, bench/results/poster_sheet.jpg
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common import DATA, RESULTS, cpu_name, in_own_process, markdown_table, texture_frequency

from stylize.picture import CONTENT_MARGIN, poster_stroke_factor
from stylize.tiling import TILE_CORE, tiles

PHOTO = DATA / "content" / "yijunmaverick-universalstyletransfer-028.jpg"  # held out (bench/holdout.txt)
FACE_CROP = (0, 40, 512, 328)  # the 16:9 band of the 512 px portrait that holds the face
FACE_CENTER = (0.14, 0.62)  # the eye and cheek, as a share of that band's width and height
STYLE = DATA / "style" / "jcjohnson-neural-style-starry_night_crop.jpg"  # held out
SIZES = [(1344, 756), (2688, 1512), (5376, 3024), (7680, 4320)]  # 1.0, 4.1, 16.3 and 33.2 MP


def run_cli(photo: Path, out: Path, variant: str, side: int, *extra: str) -> dict:
    """The CLI in a fresh process on 2 threads: seconds end to end (model load and PNG writing included) and VmHWM."""
    measured = in_own_process(
        "import time; from stylize.cli import main; started = time.perf_counter(); "
        f"code = main([{str(photo)!r}, {str(STYLE)!r}, '-o', {str(out)!r}, '--variant', {variant!r}, "
        f"'--max-side', '{side}', '--device', 'cpu', *{list(extra)!r}]); assert code == 0\n"
        "print('SECONDS', time.perf_counter() - started)")
    return {"seconds": round(measured["SECONDS"], 1), "peak_rss_gib": measured["peak_rss_gib"]}


def seam_lines(size: tuple[int, int], variant: str, stroke: float) -> tuple[list[int], list[int]]:
    """Output columns and rows where tile cores meet (the grid stylize.tiling lays over the painted canvas)."""
    factor = stroke * poster_stroke_factor(max(size))
    painted = (round(size[0] / factor), round(size[1] / factor))
    shape = [-(-(side + 2 * CONTENT_MARGIN) // 8) * 8 for side in painted[::-1]]
    grid = tiles(shape[0], shape[1], TILE_CORE[variant])
    cuts = lambda index, scale: sorted({t.core[index] for t in grid if t.core[index] > 0})  # noqa: E731
    to_out = lambda cut, k: round((cut - CONTENT_MARGIN) * size[k] / painted[k])  # noqa: E731
    return [to_out(c, 0) for c in cuts(1, 1)], [to_out(c, 1) for c in cuts(0, 1)]


def seam_ratio(picture: Image.Image, columns: list[int], rows: list[int]) -> dict:
    """Mean |luminance step| across each seam line over the median step across any line of the picture: 1 where a
    seam is as visible as any column; also the 99th percentile of all lines, what a picture's own edges reach."""
    gray = np.asarray(picture.convert("L"), dtype=np.float32)
    across_columns = np.abs(np.diff(gray, axis=1)).mean(axis=0)  # step between column x and x + 1
    across_rows = np.abs(np.diff(gray, axis=0)).mean(axis=1)
    steps = np.concatenate([across_columns, across_rows])
    seams = [across_columns[c - 1] for c in columns if 0 < c < gray.shape[1]] + [across_rows[r - 1] for r in rows if 0 < r < gray.shape[0]]
    median = float(np.median(steps))
    return {"seam_over_median_max": round(float(max(seams)) / median, 2) if seams else None,
            "seam_over_median_mean": round(float(np.mean(seams)) / median, 2) if seams else None,
            "lines_p99_over_median": round(float(np.percentile(steps, 99)) / median, 2), "seams": len(seams)}


def central_crop(picture: Image.Image, side: int = 1024) -> Image.Image:
    left, top = max(0, (picture.width - side) // 2), max(0, (picture.height - side) // 2)
    return picture.crop((left, top, left + min(side, picture.width), top + min(side, picture.height)))


def crop_at(picture: Image.Image, center: tuple[int, int], side: int = 512) -> Image.Image:
    left = min(max(0, center[0] - side // 2), picture.width - side)
    top = min(max(0, center[1] - side // 2), picture.height - side)
    return picture.crop((left, top, left + side, top + side))


def measured_at_poster_size(pictures: dict, photos: dict) -> tuple[dict, dict]:
    """The seams and stroke sizes of each model's pictures, and the sheet (bench/results/poster_sheet.jpg)."""
    poster = SIZES[-1]
    seams, strokes, sheet_rows = {}, {}, []
    for variant in ("fast", "quality"):
        picture = Image.open(pictures[variant, poster]).convert("RGB")
        columns, rows = seam_lines(poster, variant, 1.0)
        seams[variant] = seam_ratio(picture, columns, rows)
        strokes[variant] = []
        for size in (SIZES[0], SIZES[2], SIZES[3]):
            out = Image.open(pictures[variant, size]).convert("RGB")
            photo = Image.open(photos[size]).convert("RGB")
            frequency = texture_frequency(central_crop(out), central_crop(photo))
            strokes[variant].append({"width": size[0], "cycles_per_px": round(frequency, 4),
                                     "period_px": round(1 / frequency, 1), "period_per_mille_of_width": round(1000 / frequency / size[0], 2)})
        corner = (columns[len(columns) // 2], rows[len(rows) // 2]) if columns and rows else (poster[0] // 2, poster[1] // 2)
        face = (round(FACE_CENTER[0] * poster[0]), round(FACE_CENTER[1] * poster[1]))
        whole = picture.resize((1024, 576), Image.LANCZOS)
        marks = ImageDraw.Draw(whole)
        for x, y in (corner, face):
            marks.rectangle([(x - 256) * 1024 / poster[0], (y - 256) * 576 / poster[1], (x + 256) * 1024 / poster[0],
                             (y + 256) * 576 / poster[1]], outline="white", width=2)
        sheet_rows.append([whole, crop_at(picture, corner).resize((576, 576)), crop_at(picture, face).resize((576, 576))])
    sheet = Image.new("RGB", (1024 + 2 * 576, 576 * len(sheet_rows)), "white")
    for r, row in enumerate(sheet_rows):
        for image, left in zip(row, (0, 1024, 1600)):
            sheet.paste(image, (left, r * 576))
    sheet.save(RESULTS / "poster_sheet.jpg", quality=90)
    return seams, strokes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-full-detail", action="store_true", help="leave out the 8K runs painted at full size")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stylize-poster-"))
    source = Image.open(PHOTO).convert("RGB").crop(FACE_CROP)
    photos = {}
    for size in SIZES:
        photos[size] = work / f"photo_{size[0]}.png"
        source.resize(size, Image.LANCZOS).save(photos[size], compress_level=1)
    runs, pictures = [], {}
    for variant in ("fast", "quality"):
        for size in SIZES:
            out = work / f"{variant}_{size[0]}.png"
            measured = run_cli(photos[size], out, variant, size[0])
            megapixels = size[0] * size[1] / 1e6
            runs.append({"variant": variant, "size": list(size), "megapixels": round(megapixels, 1), "stroke_scale": 1.0,
                         **measured, "s_per_mp": round(measured["seconds"] / megapixels, 2)})
            pictures[variant, size] = out
            print(runs[-1], flush=True)
        if not args.skip_full_detail:  # the stroke control at its finest: painted at the full 7680 x 4320, 33 MP of tiles
            out = work / f"{variant}_full.png"
            measured = run_cli(photos[SIZES[-1]], out, variant, SIZES[-1][0], "--stroke-scale", "0.5")
            runs.append({"variant": variant, "size": list(SIZES[-1]), "megapixels": 33.2, "stroke_scale": 0.5, **measured,
                         "s_per_mp": round(measured["seconds"] / 33.2, 2)})
            print(runs[-1], flush=True)

    seams, strokes = measured_at_poster_size(pictures, photos)

    result = {"machine": cpu_name(), "threads": 2, "photo": PHOTO.name, "style": STYLE.name, "runs": runs, "seams": seams,
              "strokes": strokes, "tile_core": TILE_CORE, "date": time.strftime("%Y-%m-%d")}
    (RESULTS / "poster.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Posters ({result['date']}, {result['machine']}, 2 threads; `python bench/poster.py`)", "",
             "The CLI end to end (model load, decoding, painting in tiles, finishing, PNG writing), each run in its own "
             "process. stroke scale 1 is the default (past 2048 px strokes grow as the square root of the side); 0.5 "
             "paints the poster at its full size.", "",
             *markdown_table(["model", "output", "MP", "stroke scale", "seconds", "s / MP", "peak RSS (GiB)"],
                             [[r["variant"], f"{r['size'][0]}×{r['size'][1]}", r["megapixels"], r["stroke_scale"], r["seconds"],
                               r["s_per_mp"], r["peak_rss_gib"]] for r in runs]), "",
             "Tile seams at 7680×4320 (mean |luminance step| across a seam line over the median across any line; the "
             "99th percentile of all lines for scale):", "",
             *markdown_table(["model", "seam lines", "seam / median, mean", "seam / median, max", "any line, 99th pct / median"],
                             [[v, s["seams"], s["seam_over_median_mean"], s["seam_over_median_max"], s["lines_p99_over_median"]]
                              for v, s in seams.items()]), "",
             "Stroke size by output size (texture added to the photo, central 1024 px crop; period = 1 / frequency):", "",
             *markdown_table(["model", *(f"{s['width']} px: period px (‰ of width)" for s in strokes["fast"])],
                             [[v, *(f"{s['period_px']} ({s['period_per_mille_of_width']})" for s in rows)]
                              for v, rows in strokes.items()]), "",
             "![posters](poster_sheet.jpg)", "",
             "Sheet: each model's 7680×4320 picture scaled down (boxes: the crops), a 512 px crop at a tile corner and "
             "one at the face, both shown at 1:1 scale enlarged to 576 px."]
    (RESULTS / "poster.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
