"""The widget demos in a real browser (issue 19): `anitalker demo` serves them with Voila; Playwright drives Debian's
Chromium (launched by path: nothing is downloaded). Asserts on what the page shows: the pictures' pixels against the
API's render of the same input, a generated video's duration, and the error text for a bad upload. Screenshots go to
$ANITALKER_SCREENSHOTS if set."""
import os, re, socket, subprocess, sys, urllib.request
from contextlib import contextmanager
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from skimage import data as skdata
from anitalker.data.datasets import list_clips
from anitalker.data.synthetic import make_dataset
from anitalker.stage1.model import MotionAutoencoder
from anitalker.stage2.generator import MotionGenerator
from anitalker.infer.loading import load_stage1_any
from anitalker.widgets.explorer import MotionProbe, from_png
from anitalker.widgets.swap import builtin_swap, swap_frames, frame_psnr
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
    "`anitalker demo` on official-layout tiny files (random weights), 2 built-in speakers of 1 s, the astronaut."
    d = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0); ae = MotionAutoencoder.from_preset("tiny")
    torch.save({"lia." + k: v for k, v in ae.state_dict().items()}, d/"stage1.ckpt")     # official key layouts
    sd = MotionGenerator.from_preset("tiny", "mfcc_full_control").state_dict()
    torch.save({**{"model." + k: v for k, v in sd.items()}, **{"ema_model." + k: v for k, v in sd.items()},
                "x_T": torch.randn(1, 20)}, d/"stage2.ckpt")
    make_dataset(d/"data", n_ids=2, clips_per_id=1, seconds=1.0, size=64, seed=0, workers=1, progress=False)
    Image.fromarray(skdata.astronaut()).save(d/"astro.png")
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "anitalker.cli", "demo", "--stage1", str(d/"stage1.ckpt"), "--stage2",
                          str(d/"stage2.ckpt"), "--variant", "mfcc_full_control", "--preset", "tiny", "--data",
                          str(d/"data"), "--portrait", str(d/"astro.png"), "--port", str(port)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("AniTalker kit demo: http://127.0.0.1:"), line + p.stderr.read()[-2000:]
    url = line.split()[3]
    wait_for_output(p, r"running at:\s*" + re.escape(url))              # Voila says so once it serves
    assert urllib.request.urlopen(url, timeout=30).status == 200
    yield url, d
    p.terminate(); p.wait(timeout=30)

@contextmanager
def page_of(url, name:str):
    "A page of the demo in Chromium; fails on any console error; a screenshot `name`.png at the end if asked."
    from playwright.sync_api import sync_playwright
    errors = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, timeout=120_000)
        page.wait_for_selector("img.explorer-frame[src^='blob:']", timeout=120_000)
        yield page
        assert "Traceback" not in page.inner_text("body")
        if SHOTS: page.screenshot(path=str(Path(SHOTS)/f"{name}.png"), full_page=True)
        browser.close()
    assert not errors, errors

SHOWN = """async (sel) => { const r = await fetch(document.querySelector(sel).src);
                           return Array.from(new Uint8Array(await r.arrayBuffer())); }"""

def shown(page, sel:str) -> np.ndarray: return from_png(bytes(page.evaluate(SHOWN, sel)))

def step_slider(page, sel:str, img:str):
    "One keyboard step of the slider `sel`; waits until picture `img` changes."
    src = page.evaluate("s => document.querySelector(s).src", img)
    page.locator(sel).locator(".noUi-handle").focus(); page.keyboard.press("ArrowRight")
    page.wait_for_function("([s, v]) => document.querySelector(s).src !== v", arg=[img, src], timeout=60_000)

def test_demo_refuses_a_bad_model_before_serving(tmp_path):
    (tmp_path/"junk.ckpt").write_bytes(b"not a checkpoint")
    for extra, says in (([], "junk.ckpt"), (["--stage2", str(tmp_path/"junk.ckpt")], "go together")):
        r = subprocess.run([sys.executable, "-m", "anitalker.cli", "demo", "--stage1", str(tmp_path/"junk.ckpt"), *extra],
                           env=ENV, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and says in r.stderr and "Traceback" not in r.stderr and "http" not in r.stdout

def test_motion_explorer_in_a_real_browser(demo):
    url, d = demo
    ae, _ = load_stage1_any(d/"stage1.ckpt", "tiny"); probe = MotionProbe(ae, d/"astro.png", "auto")
    with page_of(url, "motion_explorer") as page:
        f0 = shown(page, "img.explorer-frame"); np.testing.assert_array_equal(f0[::4, ::4], probe.render(probe.alpha0)["frame"])
        step_slider(page, ".widget-slider:has-text('α3')", "img.explorer-frame")      # α3 one step up
        f1 = shown(page, "img.explorer-frame"); assert np.abs(f1.astype(int) - f0).mean() > 0.1
        a = np.array([float(v) for v in page.inner_text("code.alpha").split("[")[1].split("]")[0].split(",")], np.float32)
        assert abs(a[3] - probe.alpha0[3]) > 1e-4 and np.allclose(np.delete(a, 3), np.delete(probe.alpha0, 3), atol=1e-5)
        assert np.abs(f1[::4, ::4].astype(int) - probe.render(a)["frame"]).max() <= 1   # the API's render of that α

def test_a_bad_upload_is_refused_in_the_page(demo):
    url, d = demo
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(d/"grey.png")
    with page_of(url, "motion_explorer_error") as page:
        before = page.evaluate("document.querySelector('img.explorer-frame').src")
        with page.expect_file_chooser() as fc: page.get_by_text("portrait…").first.click()
        fc.value.set_files(str(d/"grey.png"))                               # an upload with no face in it
        page.wait_for_function("document.body.innerText.includes(\"'grey.png': no face found\")", timeout=60_000)
        assert page.evaluate("document.querySelector('img.explorer-frame').src") == before   # the old portrait stays

def test_swap_in_a_real_browser(demo):
    url, d = demo
    ae, _ = load_stage1_any(d/"stage1.ckpt", "tiny"); a, b = list_clips(d/"data")
    ref = builtin_swap(a, b, 64); out = swap_frames(ae, ref["portrait"], ref["driving"])    # the API, same inputs
    with page_of(url, "swap") as page:
        page.get_by_role("tab", name="identity / motion swap").click()
        page.wait_for_selector("img.swap-output[src^='blob:']", timeout=120_000)
        for sel, want in (("img.swap-driving", ref["driving"][0]), ("img.swap-output", out[0]),
                          ("img.swap-truth", ref["truth"][0])):
            np.testing.assert_array_equal(shown(page, sel)[::4, ::4], want)
        step_slider(page, ".swap-scrubber", "img.swap-output")                # to frame 1
        np.testing.assert_array_equal(shown(page, "img.swap-output")[::4, ::4], out[1])
        np.testing.assert_array_equal(shown(page, "img.swap-truth")[::4, ::4], ref["truth"][1])
        assert f"frame 1: PSNR {frame_psnr(out, ref['truth'])[1]:.2f} dB" in page.inner_text(".psnr")
        assert "identity leakage" in page.inner_text("body")

def test_control_plays_a_generated_video(demo):
    url, d = demo
    with page_of(url, "control") as page:
        page.get_by_role("tab", name="audio-driven control").click()
        page.get_by_role("button", name="Generate").click()
        page.wait_for_function("""() => { const v = document.querySelectorAll('video');
            return v.length == 2 && [...v].every(e => e.readyState >= 1 && e.duration > 0); }""", timeout=180_000)
        info = page.evaluate("""() => [...document.querySelectorAll('video')].map(v => ({d: v.duration,
            err: v.error && v.error.code, h264: v.canPlayType('video/mp4; codecs="avc1.42E01E"')}))""")
        assert all(abs(v["d"] - 1.0) < 0.1 and v["err"] is None for v in info), info   # 1 s of built-in speech
        assert "seed 0" in page.inner_text("body") and "seed 1" in page.inner_text("body")
