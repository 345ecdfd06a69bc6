"""The widget demos in a real browser (issue 19): `anitalker demo` serves them with Voila; Playwright drives Debian's
Chromium (launched by path: nothing is downloaded). Asserts on what the page shows: the pictures' pixels against the
API's render for the same α, and the error text for a bad upload. Screenshots go to $ANITALKER_SCREENSHOTS if set."""
import os, re, socket, subprocess, sys, urllib.request
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from skimage import data as skdata
from anitalker.stage1.model import MotionAutoencoder
from anitalker.infer.loading import load_stage1_any
from anitalker.widgets.explorer import MotionProbe, from_png
from conftest import wait_for_output

CHROMIUM = "/usr/bin/chromium"                      # Debian's package (the Makefile installs it)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
SHOTS = os.environ.get("ANITALKER_SCREENSHOTS")

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0); ae = MotionAutoencoder.from_preset("tiny")
    torch.save({"lia." + k: v for k, v in ae.state_dict().items()}, d/"stage1.ckpt")     # an official-layout file
    Image.fromarray(skdata.astronaut()).save(d/"astro.png")
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "anitalker.cli", "demo", "--stage1", str(d/"stage1.ckpt"), "--preset",
                          "tiny", "--portrait", str(d/"astro.png"), "--port", str(port)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("AniTalker kit demo: http://127.0.0.1:"), line + p.stderr.read()[-2000:]
    url = line.split()[3]
    wait_for_output(p, r"running at:\s*" + re.escape(url))              # Voila says so once it serves
    assert urllib.request.urlopen(url, timeout=30).status == 200
    yield url, d
    p.terminate(); p.wait(timeout=30)

def test_demo_refuses_a_bad_model_before_serving(tmp_path):
    (tmp_path/"junk.ckpt").write_bytes(b"not a checkpoint")
    r = subprocess.run([sys.executable, "-m", "anitalker.cli", "demo", "--stage1", str(tmp_path/"junk.ckpt")], env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "junk.ckpt" in r.stderr and "Traceback" not in r.stderr and "http" not in r.stdout

SHOWN = """async (i) => { const im = document.querySelectorAll('img.widget-image')[i];
                        const r = await fetch(im.src); return Array.from(new Uint8Array(await r.arrayBuffer())); }"""

def test_motion_explorer_in_a_real_browser(demo):
    from playwright.sync_api import sync_playwright
    url, d = demo
    ae, _ = load_stage1_any(d/"stage1.ckpt", "tiny"); probe = MotionProbe(ae, d/"astro.png", "auto")
    errors = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, timeout=120_000)
        page.wait_for_function("document.querySelectorAll('img.widget-image').length >= 3", timeout=120_000)
        shown = lambda: from_png(bytes(page.evaluate(SHOWN, 0)))
        f0 = shown(); np.testing.assert_array_equal(f0[::4, ::4], probe.render(probe.alpha0)["frame"])
        src0 = page.evaluate("document.querySelectorAll('img.widget-image')[0].src")
        page.locator(".widget-slider", has_text="α3").locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")                                   # α3 one step up
        page.wait_for_function("s => document.querySelectorAll('img.widget-image')[0].src !== s", arg=src0,
                               timeout=60_000)                              # a new picture arrived
        f1 = shown(); assert np.abs(f1.astype(int) - f0).mean() > 0.1
        a = np.array([float(v) for v in page.inner_text("code.alpha").split("[")[1].split("]")[0].split(",")], np.float32)
        assert abs(a[3] - probe.alpha0[3]) > 1e-4 and np.allclose(np.delete(a, 3), np.delete(probe.alpha0, 3), atol=1e-5)
        assert np.abs(f1[::4, ::4].astype(int) - probe.render(a)["frame"]).max() <= 1   # the API's render of that α
        if SHOTS: page.screenshot(path=str(Path(SHOTS)/"motion_explorer.png"), full_page=True)
        Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(d/"grey.png")
        with page.expect_file_chooser() as fc: page.get_by_text("portrait…").click()
        fc.value.set_files(str(d/"grey.png"))                               # an upload with no face in it
        page.wait_for_function("document.body.innerText.includes(\"'grey.png': no face found\")", timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        if SHOTS: page.screenshot(path=str(Path(SHOTS)/"motion_explorer_error.png"), full_page=True)
        browser.close()
    assert not errors, errors
