"""The app as visitors meet it on a CPU: launches app.py, then from this (second) process over loopback measures
- a first stylisation and a slider move at 512 px, and 20 concurrent requests;
- the same slider moves while another visitor paints harder (a 40 s refine, 512 px): what a normal request waits;
- the disk Gradio's cache (where the app writes its results) gains per 2048 px slider move;
- slider moves in a real (headless) Chromium at 1024 px: from the mouse release to the new picture decoded on the
  page, for each model; where the page previews with the fast model, to the preview too, and again with previews off.
Not run by pytest.

    python bench/app_load.py                # writes bench/results/app_load.json and app_load.md
    python bench/app_load.py --tag _avx2    # another CPU's run beside it
"""
import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from gradio_client import Client, handle_file

from common import RESULTS, TAG_HELP, cpu_name, held_out, load, serve_app

CONCURRENT = 20
MOVES = (3.0, 6.0, 12.0, 20.0, 1.5)  # λ_style of the timed slider moves
SLIDER_POSITIONS = (0.3, 0.5, 0.7, 0.4, 0.6, 0.35, 0.65, 0.45, 0.55, 0.3)  # where the browser releases the λ_style slider
AFTER_IMAGES = "[...document.querySelectorAll('#output img')]"


def browser_slider_moves(url: str, content: Path, style: Path, variant: str) -> dict[str, list[float]]:
    """Seconds from each release of the λ_style slider to a picture of that λ decoded in the page, the first one shown
    (on a CPU the quality model's is the fast model's preview) and the chosen model's (the first move excluded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.locator("#content input[type=file]").set_input_files(str(content))
        page.locator("#style input[type=file]").set_input_files(str(style))
        page.locator("#resolution input").click()
        page.get_by_role("option", name="1024", exact=True).click()
        page.locator("#variant label", has_text=variant).click()
        page.wait_for_function("document.querySelector('#info').innerText.includes('1024') && "
                               f"document.querySelector('#info').innerText.includes('({variant})')", timeout=180_000)
        slider = page.locator("#lambda_style input[type=range]")
        box = slider.bounding_box()
        times = {"first": [], "chosen": []}
        for position in SLIDER_POSITIONS:
            page.mouse.move(box["x"] + box["width"] * position, box["y"] + box["height"] / 2)
            page.mouse.down()
            started = time.perf_counter()
            page.mouse.up()
            # the summary that comes with the picture names this very λ and its model; the images on the page are decoded
            expected = f"style {10 ** float(slider.input_value()):.3g},"

            def shown(model: str) -> float:
                page.wait_for_function(f"([e, m]) => document.querySelector('#info').innerText.includes(e) && "
                                       f"document.querySelector('#info').innerText.includes(m) && "
                                       f"{AFTER_IMAGES}.every(i => i.complete && i.naturalWidth > 0)",
                                       arg=[expected, model], timeout=120_000)
                return time.perf_counter() - started

            times["first"].append(shown(""))
            chosen = f"({variant})"
            times["chosen"].append(times["first"][-1] if chosen in page.locator("#info").inner_text() else shown(chosen))
            page.wait_for_timeout(500)
        browser.close()
    return {shown: seconds[1:] for shown, seconds in times.items()}


def browser_medians(url: str, content: Path, style: Path, variant: str) -> dict[str, float]:
    return {shown: statistics.median(seconds) for shown, seconds in browser_slider_moves(url, content, style, variant).items()}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="", help=TAG_HELP)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    contents, styles = [], held_out("style", 4)
    for i, path in enumerate(held_out("content", 4)):  # exactly 512 px on the long side, so 512 px is what is timed
        image = load(path, 2048)
        image.resize((512, round(512 * image.height / image.width))).save(tmp / f"content{i}.png")
        contents.append(tmp / f"content{i}.png")
    big = load(held_out("content", 5)[4], 2048)
    big.resize((2048, round(2048 * big.height / big.width))).save(tmp / "big.png")
    server_tmp = tmp / "server-tmp"  # the app's result folder and Gradio's cache both live under the server's TMPDIR
    server_tmp.mkdir()

    with serve_app(TMPDIR=str(server_tmp)) as (url, server):
        client = Client(url, verbose=False)

        def request(content, style, lambda_style=3.0, resolution=512, **options) -> float:
            started = time.perf_counter()
            client.predict(content=handle_file(str(content)), style=handle_file(str(style)), lambda_style=lambda_style,
                           resolution=resolution, **options, api_name="/stylize")
            return time.perf_counter() - started

        request(contents[3], styles[3], resolution=256)  # warm-up, excluded
        first = [request(c, s) for c, s in zip(contents[:3], styles[:3])]
        moves = [request(contents[2], styles[2], v) for v in MOVES]
        parameters = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/stylize"]["parameters"]
        (variant_parameter,) = [p for p in parameters if p["parameter_name"] == "variant"]
        default_variant = variant_parameter["parameter_default"]
        variants = variant_parameter["type"].get("enum", [default_variant])
        moves_1024 = {}
        for variant in variants:
            request(tmp / "big.png", styles[1], 2.0, resolution=1024, variant=variant)  # encodes; the moves then hit the cache
            moves_1024[variant] = statistics.median(request(tmp / "big.png", styles[1], v, 1024, variant=variant) for v in MOVES)

        refiner = Client(url, verbose=False)  # another visitor
        refining = refiner.submit(content=handle_file(str(contents[0])), style=handle_file(str(styles[0])), resolution=512,
                                  seconds=40, api_name="/refine")
        while not refining.outputs():  # the one-pass picture is out: refine steps are running now
            time.sleep(0.1)
        moves_while_refining = [request(contents[2], styles[2], v) for v in MOVES]
        refine_running = not refining.done()
        *_, refine_info = refining.result()

        rss_before = psutil.Process(server.pid).memory_info().rss
        with ThreadPoolExecutor(CONCURRENT) as pool:
            futures = [pool.submit(request, contents[i % 4], styles[(i // 4) % 4], 1.0 + i) for i in range(CONCURRENT)]
            latencies = [f.result() for f in futures]  # raises if any request was lost
        rss_after = psutil.Process(server.pid).memory_info().rss

        disk_before = folder_bytes(server_tmp)
        requests_2048 = 5
        for v in MOVES[:requests_2048]:
            request(tmp / "big.png", styles[1], v, resolution=2048)
        disk_per_2048 = (folder_bytes(server_tmp) - disk_before) / requests_2048
        browser_1024 = {variant: browser_medians(url, tmp / "big.png", styles[1], variant) for variant in variants}
    previewed, without_previews = [v for v, t in browser_1024.items() if t["first"] < t["chosen"] - 0.05], {}
    if previewed:
        with serve_app(TMPDIR=str(server_tmp), STYLIZE_PREVIEW="0") as (url, _):  # what previews cost the picture after them
            without_previews = {v: browser_medians(url, tmp / "big.png", styles[1], v)["chosen"] for v in previewed}

    q = statistics.quantiles(latencies, n=100)
    idle, busy = statistics.median(moves), statistics.median(moves_while_refining)
    result = {
        "cpu": cpu_name(), "default_model": default_variant, "first_stylisation_512_s": statistics.median(first), "slider_move_512_s": idle, "slider_move_1024_s": moves_1024,
        "browser_slider_move_1024_s": browser_1024, "browser_slider_move_1024_without_previews_s": without_previews,
        "while_another_visitor_refines": {
            "slider_move_512_median_s": busy, "slider_move_512_max_s": max(moves_while_refining),
            "ratio_to_idle": busy / idle, "refine_still_running_after_the_moves": refine_running, "refine_result": refine_info},
        "concurrent": {"requests": CONCURRENT, "answered": len(latencies), "p50_s": q[49], "p90_s": q[89], "p99_s": q[98],
                       "max_s": max(latencies)},
        "server_rss_mib": {"before_burst": rss_before / 2**20, "after_burst": rss_after / 2**20},
        "disk_mb_per_2048_request": disk_per_2048 / 1e6,
        "note": "latency seen by the client over loopback, queue wait included (renders one at a time, 2 CPU threads)",
    }
    (RESULTS / f"app_load{args.tag}.json").write_text(json.dumps(result, indent=2))
    refine = result["while_another_visitor_refines"]
    lines = [
        f"The app on {result['cpu']}, 2 threads, over loopback: `python bench/app_load.py`; the app's default model here: "
        f"{default_variant}.", "",
        "| measure | seconds |", "|---|---|",
        f"| first stylisation, 512 px (median of 3) | {result['first_stylisation_512_s']:.2f} |",
        f"| slider move, 512 px (median of {len(MOVES)}) | {idle:.2f} |",
        *(f"| slider move, 1024 px, {v} model (median of {len(MOVES)}) | {t:.2f} |" for v, t in moves_1024.items()),
        *(row for v, t in browser_1024.items() for row in (
            f"| slider move in a real browser, 1024 px, {v} model (release to its picture shown; median of "
            f"{len(SLIDER_POSITIONS) - 1}) | {t['chosen']:.2f} |",
            *([f"| … the fast model's preview shown first | {t['first']:.2f} |",
               f"| … its picture with previews off (`STYLIZE_PREVIEW=0`, same run) | {without_previews[v]:.2f} |"]
              if v in without_previews else []))),
        f"| slider move while another visitor refines (median / max of {len(MOVES)}) | {busy:.2f} / {refine['slider_move_512_max_s']:.2f} |",
        f"| {CONCURRENT} concurrent requests: p50 / p90 / max | {q[49]:.2f} / {q[89]:.2f} / {max(latencies):.2f} |", "",
        f"Disk per 2048 px request ({requests_2048} slider moves on one photo; each result stored once, in Gradio's cache): "
        f"{result['disk_mb_per_2048_request']:.1f} MB, "
        "within the app's one disk budget for uploads and results (docs/usage.md).",
        f"The refine meanwhile: {refine_info.split(' · ')[-1].strip()}.",
    ]
    (RESULTS / f"app_load{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
