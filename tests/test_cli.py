"The `anitalker` console script, run as a user would run it."
import base64, json
from html.parser import HTMLParser
import numpy as np
from anitalker.data.media import read_video, read_audio

def test_info(cli):
    r = cli("info")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert {"kit_version", "torch", "torch_threads", "cpu"} <= set(info)

TINY = ["stage1_steps=4", "stage2_steps=4", "gen_steps=3", "stage1.data_ids=4", "stage1.data_seconds=1.0", "stage1.held_out=2",
        "stage1.batch_size=4", "stage1.eval_pairs_per_clip=2", "stage1.log_every=1", "stage2.window=16", "stage2.batch_size=4",
        "stage2.items_per_clip=2", "stage2.eval_steps=3", "stage2.log_every=1"]

class _Page(HTMLParser):
    def __init__(self): super().__init__(); self.imgs, self.videos, self.text = [], [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img": self.imgs.append(a["src"])
        if tag == "video": self.videos.append(a["src"])
    def handle_data(self, d): self.text.append(d)

def test_quickstart_chain_report_reuse_and_failure(cli, tmp_path):
    "The main job end to end at toy sizes: stage 1 -> latents -> stage 2 -> generation -> report; reuse; a failing phase."
    r = cli("quickstart", "--out", "runs/qs", "--set", "data_dir=data", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "runs/qs"
    assert "[quickstart] 1/3 stage1" in r.stderr and "stage1 training" in r.stderr and "stage2 training" in r.stderr   # progress shown
    assert "report: " in r.stdout and "watermark found" in r.stdout
    assert "Kernel is running over TCP" not in r.stderr                       # the kernel's warning is silenced
    m = json.loads((run / "metrics.json").read_text())
    assert m["stage1"]["steps"] == 4 and m["stage2"]["steps"] == 4 and m["stage2"]["eval"]["n_clips"] == 4
    assert np.isfinite(m["stage1"]["self_reenactment"]["psnr"]) and -1 <= m["stage2"]["eval"]["mouth_r"] <= 1
    g = m["generate"]
    assert g["watermark_found"] and g["watermark_bit_accuracy"] >= 0.95 and g["frames"] == 25 and len(g["frame_change"]) == 2
    assert m["inputs"]["portrait_speaker"] == "syn0002" and m["inputs"]["audio_speaker"] == "syn0003"   # the 2 held-out speakers
    assert set(m["seconds"]) == {"stage1", "stage2", "generate"} and all(v > 0 for v in m["seconds"].values())
    v = read_video(run / "quickstart.mp4", fps=None)
    assert v.shape == (25, 64, 64, 3) and read_audio(run / "quickstart.mp4").size > 15000      # 1 s of held-out audio muxed in
    page = _Page(); page.feed((run / "report.html").read_text())
    assert page.videos == ["quickstart.mp4"] and len(page.imgs) == 6               # + the truth strip and the diagnostics curves
    dg = m["stage1"]["diagnostics"]
    assert dg["drive"] == "difference" and set(dg["probe"]["alpha_within"]) == {"yaw", "pitch", "roll", "tx", "zoom", "mouth", "blink"}
    assert np.isfinite(dg["cross_reenactment"]["psnr"]) and 0 <= dg["spread"]["motion_share"] <= 1
    for src in page.imgs:                                                                      # self-contained: PNGs inline
        assert src.startswith("data:image/png;base64,") and base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(page.text)
    assert f"{m['stage1']['self_reenactment']['psnr']:.2f} dB" in text and f"{m['stage2']['eval']['mouth_r']:.3f}" in text
    assert "What the motion code carries" in text and f"{dg['cross_reenactment']['psnr']:.2f} dB" in text
    yaw = dg["probe"]["alpha_within"]["yaw"]; assert ("–" if yaw is None else f"{yaw:.2f}" if yaw >= 0 else "< 0") in text
    for f in ("stage1/stage1_train.ipynb", "stage1/latents/latents.json", "stage2/stage2_train.ipynb", "generate/generate.ipynb",
              "figures/frames.png", "figures/losses.png", "inputs/portrait.png", "inputs/jobs.csv"):
        assert (run / f).exists(), f
    # the same parameters again: every phase is reused, only the report is rewritten
    r2 = cli("quickstart", "--out", "runs/qs", "--set", "data_dir=data", *TINY)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stderr.count("reusing the finished run") == 3
    assert json.loads((run / "metrics.json").read_text())["seconds"] == {"stage1": "reused", "stage2": "reused", "generate": "reused"}
    # one stage-2 value changed: stage 1 is reused, stage 2 and generation are redone
    r3 = cli("quickstart", "--out", "runs/qs", "--set", "data_dir=data", *TINY, "stage2_steps=5")
    assert r3.returncode == 0, r3.stderr[-3000:]
    m3 = json.loads((run / "metrics.json").read_text())
    assert m3["seconds"]["stage1"] == "reused" and m3["seconds"]["stage2"] != "reused" and m3["stage2"]["steps"] == 5
    # a phase that fails: one clear line naming the phase, its error and the executed notebook; no report
    r4 = cli("quickstart", "--out", "runs/fail", "--set", "data_dir=nothing", "stage1.make_data=false", *TINY[:3])
    assert r4.returncode == 1 and "Traceback" not in r4.stderr
    assert "phase 'stage1' failed (FileNotFoundError" in r4.stderr and "stage1_train.ipynb" in r4.stderr
    assert not (tmp_path / "runs/fail/report.html").exists() and not (tmp_path / "runs/fail/metrics.json").exists()
    # bad values: nothing written
    r5 = cli("quickstart", "--out", "runs/bad", "--set", "stepz=3")
    assert r5.returncode == 1 and "quickstart --set stepz: unknown key" in r5.stderr and not (tmp_path / "runs/bad").exists()

def test_bad_arguments_name_the_argument(cli, tmp_path):
    r = cli("synth", "out", "--ids", "-3")
    assert r.returncode == 2
    assert "--ids" in r.stderr and "positive integer" in r.stderr
    assert not (tmp_path / "out").exists()                 # nothing half-written
    r = cli("no-such-command")
    assert r.returncode == 2 and "invalid choice" in r.stderr

def test_no_command_prints_help(cli):
    r = cli()
    assert r.returncode == 2 and "quickstart" in r.stdout

def test_bench_quick_json(cli):
    r = cli("bench", "--quick", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["preset"] == "tiny" and {"torch", "torch_threads", "cpu"} <= set(rep["env"])
    s1 = [x for x in rep["rows"] if "ms_per_frame" in x]; s2 = [x for x in rep["rows"] if "ms" in x]
    rows = {(x["module"], x["batch"], x["dtype"]) for x in s1}
    assert {("render", 1, "float32"), ("render", 4, "float32"), ("render", 4, "bfloat16"), ("encode", 1, "float32")} <= rows
    e = rep["env"]                                                                 # the machine line's facts
    assert e["heap_reuse"] is True and e["dtype_auto"][0] in ("float32", "bfloat16") and "auto:" in e["dtype_auto"][1]
    assert set(e["flags"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
    assert all(x["ms_per_frame"] > 0 for x in s1)
    assert {(x["module"], x["dtype"]) for x in s2} >= {("s2.condition", "float32"), ("s2.ddim_step", "float32"),
                                                        ("s2.sample_2s", "float32"), ("s2.sample_6s", "bfloat16")}
    e2 = [x for x in rep["rows"] if x["module"].startswith("e2e.")]
    tr = [x for x in rep["rows"] if x["module"] == "s1.train_step"]               # stage-1 training steps/s, per dtype and layout
    assert {(x["dtype"], x["layout"]) for x in tr} == {(d, l) for d in ("float32", "bfloat16") for l in ("contiguous", "channels_last")}
    assert all(x["steps_per_s"] > 0 and set(x["parts_ms"]) == {"forward", "backward", "optimizer", "encoder", "renderer"} for x in tr)
    assert all(x["parts_ms"]["encoder"] + x["parts_ms"]["renderer"] <= 1.05 * x["parts_ms"]["forward"] for x in tr)   # parts of the forward
    wd = [x for x in rep["rows"] if x["module"].startswith("widget.")]           # demo responsiveness
    assert [(x["module"], x["preset"]) for x in wd] == [("widget.slider", "tiny"), ("widget.swap", "tiny")]
    assert wd[0]["move_ms"] > 0 and wd[1]["s"] > 0 and wd[1]["frames"] == 25
    cl = [x for x in rep["rows"] if x["module"] == "render.conv_limit"]      # render against its own convolutions
    assert [(x["dtype"], x["batch"]) for x in cl] == [("float32", 16), ("bfloat16", 16)]     # each at the pipeline's batch
    assert all(x["conv_ms"] > 0 and x["n_convs"] > 10 for x in cl)
    assert all(x["ms"] > 0 for x in s2) and len(s1) + len(s2) + len(e2) + len(tr) + len(wd) + len(cl) == len(rep["rows"])
    assert {(x["module"], x["dtype"], x["frames"], x["batch"]) for x in e2} == {("e2e.generate_2s", "float32", 50, 16),
                                                                                ("e2e.generate_2s", "bfloat16", 50, 16)}
    assert all(x["parallel"]["watermark + paste-back + write"] > 0 for x in e2)   # written while the next batch renders
    r = cli("bench", "--quick", "--json", "--only", "stage2")
    assert r.returncode == 0, r.stderr
    assert all("ms" in x for x in json.loads(r.stdout)["rows"])
    r = cli("bench", "--quick", "--json", "--only", "e2e", "--variant", "hubert_audio_only")    # features from a random HuBERT
    assert r.returncode == 0, r.stderr
    assert {x["preset"] for x in json.loads(r.stdout)["rows"]} == {"tiny/hubert_audio_only"}

def test_bench_bad_checkpoint_is_one_clear_line(cli, tmp_path):
    (tmp_path / "junk.ckpt").write_text("junk")
    r = cli("bench", "--stage1", str(tmp_path / "junk.ckpt"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "junk.ckpt" in r.stderr and "is not a checkpoint" in r.stderr
    r = cli("bench", "--stage1", str(tmp_path / "missing.ckpt"))
    assert r.returncode == 1 and "missing.ckpt" in r.stderr and "does not exist" in r.stderr
