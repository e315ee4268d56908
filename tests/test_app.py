"""The Gradio app, launched for real on 127.0.0.1: API round trips with gradio_client, then a real browser."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import REPO

CONTENT = REPO / "examples" / "content" / "deb-skimage-chelsea.jpg"  # 451 x 300
STYLE = REPO / "examples" / "style" / "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"stylize-app-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert proc.poll() is None, "app exited during start-up"
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("app did not start within 180 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def call(client, content, style, log_style=None, resolution=256):
    from gradio_client import handle_file

    log_lambdas = [0.0, 0.477, -1.0, -1.0, -0.3]
    if log_style is not None:
        log_lambdas[1] = log_style
    return client.predict(handle_file(str(content)), handle_file(str(style)), *log_lambdas, 1.0, False, resolution, 0, api_name="/stylize")


def test_client_roundtrip_lambda_and_bad_file(app_url, tmp_path):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    image_path, download_path, info = call(client, CONTENT, STYLE)
    with Image.open(image_path) as image, Image.open(download_path) as full:
        assert image.size == (256, 170) and full.size == (256, 170)
        first = np.asarray(image.convert("RGB"), dtype=float)
    assert "256×170" in info and "cpu" in info
    other_path, _, _ = call(client, CONTENT, STYLE, log_style=1.4)
    with Image.open(other_path) as other:
        assert np.abs(np.asarray(other.convert("RGB"), dtype=float) - first).mean() > 0.5

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(Exception, match="content: .*(not an image|broken)"):
        call(client, bad, STYLE)
    again, _, _ = call(client, CONTENT, STYLE)  # the server keeps serving
    with Image.open(again) as image:
        assert image.size == (256, 170)


def test_real_browser_upload_run_and_slider(app_url):
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.locator("#content input[type=file]").set_input_files(str(CONTENT))
        page.locator("#style input[type=file]").set_input_files(str(STYLE))
        page.locator("#run").click()
        output = page.locator("#output img")
        output.wait_for(state="visible", timeout=120_000)
        first_src = output.get_attribute("src")
        assert first_src
        page.wait_for_function("document.querySelector('#info').innerText.includes('×')", timeout=60_000)

        # drag the style slider like a person would: press, move, release
        slider = page.locator("#lambda_style input[type=range]")
        box = slider.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.6, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=5)
        page.mouse.up()
        page.wait_for_function(
            "src => { const img = document.querySelector('#output img'); return img && img.src && img.src !== src; }",
            arg=first_src, timeout=120_000)
        assert float(slider.input_value()) > 1.0
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        browser.close()
