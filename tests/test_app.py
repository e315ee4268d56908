"""The Gradio app, launched for real on 127.0.0.1: API round trips with gradio_client, then a real browser."""
import importlib.util
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylize.pipeline import Stylizer
from stylize.web import painted_mask

from .helpers import serve_app

from .conftest import REPO

CONTENT = REPO / "examples" / "content" / "deb-skimage-chelsea.jpg"  # 451 x 300
STYLE = REPO / "examples" / "style" / "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
DEFAULTS = json.loads((REPO / "weights" / "config.json").read_text())["lambdas"]["defaults"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gradio-cache")
    with serve_app(Path(os.environ.get("TMPDIR", "/tmp")) / "stylize-app-test.log", GRADIO_TEMP_DIR=str(cache)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False, httpx_kwargs={"timeout": 90})  # a loaded 2-core CI machine is slow; asserts time instead


def stylize(client, content=CONTENT, style=STYLE, resolution=256, **lambdas):
    from gradio_client import handle_file

    return client.predict(content=handle_file(str(content)), style=handle_file(str(style)), resolution=resolution,
                          **lambdas, api_name="/stylize")


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=float)


def test_api_names_every_parameter_and_takes_lambda_itself(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(api) == {"/stylize", "/refine"}
    for endpoint in api.values():
        names = [p["parameter_name"] for p in endpoint["parameters"]]
        assert not any(n.startswith("param_") for n in names)
        defaults = {p["parameter_name"]: p["parameter_default"] for p in endpoint["parameters"]}
        assert {n: defaults[f"lambda_{n}"] for n in DEFAULTS} == DEFAULTS  # λ, not log10 λ
    refine = {p["parameter_name"]: p["parameter_default"] for p in api["/refine"]["parameters"]}
    assert list(refine)[-2:] == ["seconds", "steps"] and refine["seconds"] == 15 and refine["steps"] == 0


def test_client_roundtrip_lambda_and_bad_file(client, tmp_path):
    (before, after), download, info = stylize(client)
    assert download == after  # the download and the view share one stored file
    assert pixels(before).shape == pixels(after).shape == (170, 256, 3)
    assert "256×170" in info and "cpu" in info and f"style {DEFAULTS['style']:.3g}" in info
    assert Stylizer.from_pretrained(device="cpu").precision in info  # bf16 on a CPU with AMX, else fp32
    (_, other), _, other_info = stylize(client, lambda_style=25.0)
    assert "style 25" in other_info
    assert np.abs(pixels(other) - pixels(after)).mean() > 0.5

    # the quality generator by default; the fast student one parameter away
    (_, fast), _, fast_info = stylize(client, variant="fast")
    assert "(quality)" in info and "(fast)" in fast_info
    assert np.abs(pixels(fast) - pixels(after)).mean() > 0.5

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(Exception, match="content: .*(not an image|broken)"):
        stylize(client, content=bad)
    (_, again), _, _ = stylize(client)  # the server keeps serving
    assert pixels(again).shape == (170, 256, 3)


def test_uploads_over_the_size_limit_are_refused_and_the_server_goes_on(client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(51 * 2**20))  # 51 MiB: over the app's 50 MiB
    with pytest.raises(Exception, match="(?i)size|large|413"):
        stylize(client, content=big)
    (_, after), _, _ = stylize(client)
    assert pixels(after).shape == (170, 256, 3)


def test_a_render_does_not_wait_for_another_visitors_refine_and_stop_ends_it(client):
    from gradio_client import handle_file

    # a refine step takes ~1 s on 2 cores, so Stop (which lets the running step finish) answers quickly
    refining = client.submit(content=handle_file(str(CONTENT)), style=handle_file(str(STYLE)), resolution=256, seconds=60,
                             api_name="/refine")
    deadline = time.time() + 60
    while not refining.outputs() and time.time() < deadline:  # the one-pass picture: refine steps are under way now
        time.sleep(0.2)
    assert refining.outputs(), "refine showed no picture within 60 s"
    started = time.perf_counter()
    (_, after), _, _ = stylize(client, lambda_style=20.0)
    waited = time.perf_counter() - started
    assert waited < 10, f"a 256 px render waited {waited:.1f} s behind a refine"
    assert not refining.done()

    refining.cancel()  # what the page's Stop button sends
    started = time.perf_counter()
    second = client.submit(content=handle_file(str(CONTENT)), style=handle_file(str(STYLE)), resolution=256, steps=1,
                           api_name="/refine")
    *_, info = second.result(timeout=60)
    # the refine queue holds one at a time: this one ran because the stopped one let go (its budget was 60 s)
    assert time.perf_counter() - started < 20 and "painted harder: 1 refine step" in info


def test_app_module_settings_and_zero_gpu_durations(tmp_path):
    """`spaces` is imported before torch; each GPU function gets a duration that grows with the work; the photo may come
    from a webcam."""
    fake = tmp_path / "fake" / "spaces"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import sys\nTORCH_BEFORE = 'torch' in sys.modules\nDECORATED = {}\n"
        "def GPU(task=None, *, duration=None):\n"
        "    def wrap(fn):\n        DECORATED[fn.__name__] = duration\n        return fn\n    return wrap\n")
    probe = """
import json, spaces, app
render, refine = spaces.DECORATED['render'], spaces.DECORATED['refine']
sources = {b.elem_id: list(b.sources) for b in app.demo.blocks.values() if b.elem_id in ("content", "style")}
print(json.dumps({"torch_before": spaces.TORCH_BEFORE, "sources": sources,
                  "render": [render(None, {"max_side": side}) for side in (512, 2048)],
                  "refine": [refine(None, {"max_side": side}, seconds) for side, seconds in ((512, 15), (2048, 15), (2048, 60))]}))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "fake")})
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["torch_before"] is False
    assert found["sources"] == {"content": ["upload", "clipboard", "webcam"], "style": ["upload", "clipboard"]}
    # a refine's slot covers its budget beside what a render of that size asks for
    assert found["render"][0] <= found["render"][1] and found["refine"][2] <= 120
    assert [r - budget for r, budget in zip(found["refine"], (15, 15, 60))] >= [found["render"][0]] + [found["render"][1]] * 2


@pytest.fixture(scope="module")
def app_module():
    spec = importlib.util.spec_from_file_location("app", REPO / "app.py")  # a script at the checkout's root
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def test_on_a_cpu_the_page_shows_the_fast_picture_first_then_the_quality_one(app_module, monkeypatch):
    app = app_module
    settings = dict(content=str(CONTENT), style=str(STYLE), strength=1.0, preserve_color=False, resolution=256,
                    stroke_scale=1.0, style_2=None, style_3=None, style_4=None, weight_1=1.0, weight_2=1.0, weight_3=1.0,
                    weight_4=1.0, region=None, mask_upload=None, outside_style=None,
                    **{f"log_{n}": np.log10(v) for n, v in DEFAULTS.items()})
    assert app.stylizer.device.type == "cpu" and app.previews("quality") and not app.previews("fast")
    preview, final, saved = app.stylize_page(variant="quality", **settings)
    (_, preview_view), preview_download, preview_info = preview
    assert "(fast)" in preview_info and "preview" in preview_info and preview_download is None  # nothing to keep yet
    (before, view), download, info = final
    assert "(quality)" in info and "preview" not in info and download is None
    assert np.abs(pixels(preview_view) - pixels(view)).mean() > 0.5  # two models, two pictures
    # the page shows quick JPEGs; the PNG to download comes once the picture is on its way, the same picture
    skipped_view, png, skipped_info = saved
    assert preview_view.endswith(".jpg") and view.endswith(".jpg") and png.endswith(".png")
    assert skipped_view == skipped_info == app.gr.skip() and np.abs(pixels(png) - pixels(view)).mean() < 3
    assert pixels(before).shape == pixels(png).shape == (170, 256, 3)
    (_, _, fast_info), _ = app.stylize_page(variant="fast", **settings)  # the fast model needs no preview
    assert "(fast)" in fast_info and "preview" not in fast_info
    assert list(app.stylize_page(variant="quality", mode="video", **settings)) == []  # on the Video tab, only the clip paints
    monkeypatch.setattr(app, "PREVIEWS", False)  # STYLIZE_PREVIEW=0
    (_, _, quality_info), _ = app.stylize_page(variant="quality", **settings)
    assert "(quality)" in quality_info and "preview" not in quality_info


def test_the_region_painter_decodes_only_the_painted_layers(app_module, tmp_path):
    """The editor's background and composite are the photo: a slider move must not decode them (0.25 s at 2048 px)."""
    from gradio.components.image_editor import EditorData, EditorDataBlobs
    from gradio.data_classes import FileData

    (painter,) = [b for b in app_module.demo.blocks.values() if b.elem_id == "region"]
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_bytes(b"decoding this would fail")
    layer = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    layer.paste((255, 51, 85, 255), (5, 5, 15, 25))
    layer.save(tmp_path / "layer.png")
    photo = FileData(path=str(not_an_image))
    layers = painter.preprocess(EditorData(background=photo, composite=photo, layers=[FileData(path=str(tmp_path / "layer.png"))]))
    mask = painted_mask(layers, None)
    assert mask.size == (40, 30) and mask.getpixel((10, 10)) == 255 and mask.getpixel((30, 10)) == 0

    # the browser sends the canvas as blobs under an id: the layers come from there, and the blobs are let go
    painter.blob_storage["canvas"] = EditorDataBlobs(background=b"not an image", composite=b"not an image",
                                                     layers=[(tmp_path / "layer.png").read_bytes()])
    assert [l.size for l in painter.preprocess(EditorData(id="canvas"))] == [(40, 30)] and not painter.blob_storage
    assert painted_mask(painter.preprocess(EditorData(layers=[])), None) is None
    assert painter.preprocess(None) is None

@contextmanager
def browser_page(url: str, height: int):
    """The app in a real headless Chromium (Debian's: Playwright cannot download one here)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium missing under CI: .ci/run must install it")
        pytest.skip("apt-get install -y chromium to run the browser test")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": height})
        page.goto(url)
        yield page
        browser.close()


def test_real_browser_upload_run_sliders_in_lambda_and_the_last_release_wins(app_url):
    with browser_page(app_url, 1100) as page:
        page.locator("#content input[type=file]").set_input_files(str(CONTENT))
        page.locator("#style input[type=file]").set_input_files(str(STYLE))
        page.locator("#run").click()
        page.wait_for_function("document.querySelector('#info').innerText.includes('451×300')", timeout=120_000)
        assert page.locator("#output img").count() == 2  # before and after
        readout = page.locator("#lambda_style_value input")
        assert float(readout.input_value()) == pytest.approx(DEFAULTS["style"], rel=0.01)

        # drag the style slider like a person would, three times in quick succession: releases during a render are
        # not dropped, the last one is rendered (always_last), so the picture ends up matching the slider
        slider = page.locator("#lambda_style input[type=range]")
        box = slider.bounding_box()
        y = box["y"] + box["height"] / 2
        page.evaluate("() => { window.summaries = []; const info = document.querySelector('#info'); new MutationObserver("
                      "() => window.summaries.push(info.innerText)).observe(info, {subtree: true, childList: true, "
                      "characterData: true}); }")
        for start, end in ((0.6, 0.3), (0.3, 0.5), (0.5, 0.2)):
            page.mouse.move(box["x"] + box["width"] * start, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * end, y, steps=4)
            page.mouse.up()
        last = float(readout.input_value())
        assert last == pytest.approx(10 ** float(slider.input_value()), rel=0.01) and last < DEFAULTS["style"]
        # on a CPU the fast model's preview shows first; the quality model's picture replaces it
        page.wait_for_function("v => { const info = document.querySelector('#info').innerText; "
                               "return info.includes('style ' + v + ',') && info.includes('(quality)'); }",
                               arg=f"{last:.3g}", timeout=120_000)
        page.wait_for_timeout(3000)  # nothing else is still queued to overwrite it
        info = page.locator("#info").inner_text()
        assert f"style {last:.3g}," in info and "(quality)" in info and "preview" not in info
        assert any("(fast)" in shown and "preview" in shown for shown in page.evaluate("window.summaries"))
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)

        # an example row fills both images and shows its result (the first pair: a 512 x 331 photo)
        page.locator("table tbody tr").first.click()
        page.wait_for_function("document.querySelector('#info').innerText.includes('512×331') && "
                               "document.querySelector('#info').innerText.includes('(quality)')", timeout=120_000)


def test_real_browser_paint_harder_shows_progress_and_stop_keeps_the_picture(app_url):
    with browser_page(app_url, 1100) as page:
        page.locator("#content input[type=file]").set_input_files(str(CONTENT))
        page.locator("#style input[type=file]").set_input_files(str(STYLE))
        assert page.locator("#refine_seconds input[type=number]").input_value() == "15"  # the default budget
        page.locator("#refine_seconds input[type=number]").fill("60")
        page.locator("#refine_seconds input[type=number]").press("Enter")
        page.locator("#refine").click()
        # progress in seconds, then pictures as the steps go
        page.get_by_text("painting harder").first.wait_for(timeout=120_000)
        page.wait_for_function("/painted harder: [2-9]/.test(document.querySelector('#info').innerText)", timeout=120_000)
        page.locator("#stop").click()
        page.wait_for_timeout(4000)  # a step in flight ends; nothing follows it
        stopped = page.locator("#info").inner_text()
        page.wait_for_timeout(3000)
        assert page.locator("#info").inner_text() == stopped and "painted harder" in stopped
        assert page.locator("#output img").count() == 2  # the picture so far stays, before and after
        with page.expect_download(timeout=30_000) as download:  # ...and its download
            page.locator("#download").click()
        assert download.value.suggested_filename.endswith(".png")


def test_api_mixes_styles_and_paints_regions_by_name(client, tmp_path):
    from gradio_client import handle_file

    mask = tmp_path / "mask.png"
    Image.new("L", (40, 30), 255).crop((0, 0, 40, 30)).save(mask)
    _, _, info = client.predict(content=handle_file(str(CONTENT)), style=handle_file(str(STYLE)), resolution=256,
                                style_2=handle_file(str(REPO / "examples" / "style" / "deb-gcompris-van_gogh_the_night_cafe.jpg")),
                                weight_1=0.7, weight_2=0.3, mask=handle_file(str(mask)), stroke_scale=1.5, api_name="/stylize")
    assert "2 styles mixed" in info and "painted regions" in info and "256×170" in info


def test_real_browser_mixes_styles_and_paints_a_region(app_url):
    with browser_page(app_url, 1400) as page:
        page.locator("#content input[type=file]").set_input_files(str(CONTENT))
        page.locator("#style input[type=file]").set_input_files(str(STYLE))
        page.get_by_text("Mix styles").click()
        assert not page.locator("#style_3").is_visible()  # unused slots stay hidden
        page.locator("#style_2 input[type=file]").set_input_files(str(REPO / "examples" / "style" / "deb-gcompris-van_gogh_the_night_cafe.jpg"))
        page.locator("#style_3").wait_for(state="visible", timeout=30_000)  # the next slot appears once this one is used
        page.get_by_text("Paint regions").click()
        page.locator("#run").click()
        page.wait_for_function("document.querySelector('#info').innerText.includes('2 styles mixed')", timeout=120_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "app_controls.png"), full_page=True)  # docs/screenshot.png is cut from it

        # paint on the photo: a brush stroke across the editor's canvas marks where the style goes
        canvas = page.locator("#region canvas").first
        canvas.wait_for(state="visible", timeout=30_000)
        canvas.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)  # the editor draws the photo as its background
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=10)
        page.mouse.up()
        page.locator("#run").click()
        page.wait_for_function("document.querySelector('#info').innerText.includes('painted regions')", timeout=120_000)


def test_a_flood_of_uploads_keeps_the_apps_disk_within_its_budget(tmp_path):
    """Random bytes sent to Gradio's upload route (loopback only) never take the folder past STYLIZE_DISK_MB; unused
    uploads go within seconds here (minutes on a Space); the page still renders afterwards."""
    import threading

    import httpx
    from gradio_client import Client, handle_file

    cache, budget = tmp_path / "gradio", 40 * 2**20
    sizes, stop = [], threading.Event()

    def held() -> int:
        """Bytes in the folder, each file once: one renamed while the walk runs is met twice, with one inode."""
        files = {}
        for root, _, names in os.walk(cache):  # a folder removed meanwhile is skipped, not an error
            for name in names:
                try:
                    stat = os.stat(os.path.join(root, name))
                except FileNotFoundError:
                    continue
                files[stat.st_dev, stat.st_ino] = stat.st_size
        return sum(files.values())

    def watch():
        while not stop.is_set():
            sizes.append(held() if cache.exists() else 0)
            time.sleep(0.05)

    with serve_app(tmp_path / "app.log", GRADIO_TEMP_DIR=str(cache), STYLIZE_DISK_MB="40", STYLIZE_UNUSED_SECONDS="4") as (url, _):
        watcher = threading.Thread(target=watch)
        watcher.start()
        payload = os.urandom(8 * 2**20)

        def upload(k: int) -> tuple[int, list]:
            answer = httpx.post(f"{url}gradio_api/upload", files={"files": (f"junk{k}.bin", payload)}, timeout=60)
            return answer.status_code, answer.json()

        threads = [threading.Thread(target=lambda k=k: codes.append(upload(k))) for k in range(16)]
        codes: list[int] = []
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        taken = [Path(paths[0]) for code, paths in codes if code == 200]
        kept = [path.is_file() for path in taken]  # none taken is removed while room is made for the next
        too_big = httpx.post(f"{url}gradio_api/upload", files={"files": ("huge.bin", os.urandom(51 * 2**20))}, timeout=60)
        time.sleep(6)  # past STYLIZE_UNUSED_SECONDS: the pruning thread removes what nobody used
        stop.set()
        watcher.join()
        left = held()
        client = Client(url, verbose=False)
        pair, download, info = client.predict(content=handle_file(str(CONTENT)), style=handle_file(str(STYLE)),
                                              resolution=256, api_name="/stylize")
    assert len(taken) >= 3 and {code for code, _ in codes} <= {200, 507}, codes  # taken while there was room, then 507
    assert all(kept), kept
    assert too_big.status_code == 413
    assert max(sizes) <= budget, f"the folder held {max(sizes) / 2**20:.1f} MB (budget 40 MB)"
    assert left < 2**20, f"{left} bytes of unused uploads left"
    assert Image.open(download).size[0] > 0


def test_real_browser_paints_a_clip_re_renders_it_when_a_slider_moves_and_stop_ends_it(app_url, tmp_path):
    from .test_video import clip

    short = clip(tmp_path / "short.mp4", frames=48, size=(320, 192), fps=24)  # long enough for progress with the fast model
    long = clip(tmp_path / "long.mp4", frames=240, size=(320, 192), fps=24)
    with browser_page(app_url, 1100) as page:
        page.get_by_role("tab", name="Video").click()
        expected_model = "fast" if page.locator("#variant").is_visible() else "quality"  # on a CPU the tab picks the fast one
        page.locator("#style input[type=file]").set_input_files(str(STYLE))
        page.locator("#clip input[type=file]").set_input_files(str(short))
        page.locator("#run_video").click()
        page.wait_for_function("document.querySelector('#clip_info').innerText.includes('48 frames at 24 fps')", timeout=120_000)
        assert "sound kept" in page.locator("#clip_info").inner_text() and f"({expected_model})" in page.locator("#clip_info").inner_text()
        first = page.locator("#painted_clip video").get_attribute("src")
        assert first and page.locator("#info").inner_text().strip() == ""  # the photo tab painted nothing

        # a slider moved on the Video tab paints the clip again, with its progress, and only the clip
        page.evaluate("() => { window.clipInfos = []; const info = document.querySelector('#clip_info'); new MutationObserver("
                      "() => window.clipInfos.push(info.innerText)).observe(info, {subtree: true, childList: true, "
                      "characterData: true}); }")
        slider = page.locator("#strength input[type=range]")
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        page.wait_for_function("f => (document.querySelector('#painted_clip video') || {}).src !== f", arg=first, timeout=120_000)
        assert any("painting…" in shown for shown in page.evaluate("window.clipInfos"))
        assert "48 frames at 24 fps" in page.locator("#clip_info").inner_text() and page.locator("#info").inner_text().strip() == ""

        # a long clip: progress as it goes, and Stop ends it where it is
        page.locator("#clip button[aria-label='Clear']").first.click()
        page.locator("#clip input[type=file]").set_input_files(str(long))
        page.locator("#run_video").click()
        page.wait_for_function("/painting… [1-9]/.test(document.querySelector('#clip_info').innerText)", timeout=120_000)
        page.locator("#stop_video").click()
        page.wait_for_timeout(8000)  # the painting thread notices nobody waits (5 s) and ends between two frames
        stopped = page.locator("#clip_info").inner_text()
        page.wait_for_timeout(3000)
        assert page.locator("#clip_info").inner_text() == stopped and "240 frames" not in stopped
        page.screenshot(path=str(ARTIFACTS / "app_video.png"), full_page=True)
