"""Stage-1 training end to end: two DDP processes stay in sync, a SIGKILLed run resumes exactly, the papermill experiment writes everything."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pytest, torch, yaml
from anitalker.data.synthetic import make_dataset
from anitalker.engine.trainer import read_log
from anitalker.core import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("s1data")/"data"
    make_dataset(d, n_ids=4, clips_per_id=2, seconds=1.0, size=64, seed=0, workers=1, progress=False)
    return d

def params(tmp, data, **kw):
    p = {"preset": "tiny", "data_dir": str(data), "held_out": 1, "steps": 4, "batch_size": 2, "perceptual": "none",
         "metric": "aam", "use_mi": True, "adv_start": 0, "n_samples": 1, "items_per_clip": 8, "cpu": True,
         "log_every": 1, "ckpt_every": 100, "sample_every": 0, **kw}
    f = Path(tmp)/f"params_{len(list(Path(tmp).glob('params_*')))}.yaml"; f.write_text(yaml.safe_dump(p)); return f

DDP_SCRIPT = """
import sys, torch, warnings
warnings.simplefilter("ignore")
from anitalker.cli import read_params
from anitalker.stage1.train import Stage1TrainConfig, build_stage1_trainer
cfg = Stage1TrainConfig.from_params(read_params(sys.argv[1]))
tr = build_stage1_trainer(cfg, sys.argv[2], progress=False)
init = {k: v.clone() for k, v in tr.unwrap("net").state_dict().items()}
tr.fit()
r = tr.acc.process_index
torch.save({"net": tr.unwrap("net").state_dict(), "disc": tr.unwrap("disc").state_dict(), "init": init,
            "world": tr.acc.num_processes}, f"{sys.argv[2]}/rank{r}.pt")
"""

def test_ddp_two_processes_stay_identical(tmp_path, data):
    (tmp_path/"ddp.py").write_text(DDP_SCRIPT)
    out = tmp_path/"run"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(tmp_path/"ddp.py"), str(params(tmp_path, data, steps=3)), str(out)],
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = torch.load(out/"rank0.pt"), torch.load(out/"rank1.pt")
    assert a["world"] == b["world"] == 2
    for part in ("net", "disc"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]: assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs across ranks"
    moved = [k for k in a["net"] if a["net"][k].is_floating_point() and not torch.equal(a["net"][k], a["init"][k])]
    assert len(moved) > 50, "training did not change the weights"
    assert read_log(out/"metrics.csv")["step"].tolist() == [1, 2, 3]

def _train(out, p, **kw):
    return subprocess.Popen([sys.executable, "-m", "anitalker.cli", "train", "stage1", str(out), "--params", str(p), "--no-progress"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

def test_sigkill_resume_equals_uninterrupted(tmp_path, data):
    p = params(tmp_path, data, steps=30, ckpt_every=6)
    full = _train(tmp_path/"full", p); assert full.wait(timeout=600) == 0, full.stderr.read()[-3000:]
    first = full.stdout.read().splitlines()[:5]                                 # the run prints its config flat, per group
    assert [l.split(":")[0].strip() for l in first] == ["model", "loss", "optim", "data", "train"], first
    assert "steps=30" in first[4] and "ckpt_every=6" in first[4], first[4]
    cut = _train(tmp_path/"cut", p)
    ck = tmp_path/"cut"/"ckpt"/"last.pt"
    t0 = time.time()
    while not ck.exists():
        assert cut.poll() is None, "the run ended before writing a checkpoint: " + cut.stderr.read()[-2000:]
        assert time.time() - t0 < 300, "no checkpoint after 300 s"
        time.sleep(0.05)
    cut.send_signal(signal.SIGKILL); cut.wait()
    killed_at = load_checkpoint(ck)["step"]
    assert 6 <= killed_at < 30, killed_at
    res = _train(tmp_path/"cut", p); assert res.wait(timeout=600) == 0, res.stderr.read()[-3000:]
    a, b = read_log(tmp_path/"full"/"metrics.csv"), read_log(tmp_path/"cut"/"metrics.csv")
    assert b["step"].tolist() == list(range(1, 31))
    for k in a:
        if k != "time": np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    sa, sb = load_checkpoint(tmp_path/"full"/"ckpt"/"last.pt"), load_checkpoint(ck)
    for k, v in sa["models"]["net"].items(): assert torch.equal(v, sb["models"]["net"][k]), k

def test_train_cli_bad_params(tmp_path, data, cli):
    r = cli("train", "stage1", str(tmp_path/"x"), "--params", str(params(tmp_path, data)), "--set", "stepz=3")
    assert r.returncode == 1 and "unknown key(s) ['stepz']" in r.stderr
    r = cli("train", "stage1", str(tmp_path/"x"), "--params", str(params(tmp_path, data)), "--set", "stepz=3", "--set", "steps=2")
    assert r.returncode == 1 and "unknown key(s) ['stepz']" in r.stderr        # a repeated --set adds to the first, not replaces it
    r = cli("train", "stage1", str(tmp_path/"x"), "--set", f"data_dir={tmp_path/'nothing'}")
    assert r.returncode == 1 and "nothing" in r.stderr
    assert not (tmp_path/"x"/"ckpt").exists()

def test_papermill_stage1_experiment(tmp_path):
    from anitalker.cli import run_experiment
    sets = [f"data_dir={tmp_path/'data'}", "data_ids=4", "data_clips=2", "data_seconds=1.0", "held_out=2", "steps=4",
            "adv_start=2", "log_every=1", "sample_every=2", "ckpt_every=2", "eval_pairs_per_clip=2", "batch_size=4"]
    out = run_experiment("stage1_train", "tiny_cpu", sets, runs=tmp_path/"runs", progress=False)
    names = {p.name for p in out.iterdir()}
    assert {"stage1_train.ipynb", "config.json", "metrics.csv", "metrics.json", "ckpt", "figures", "latents", "samples", "tb"} <= names, names
    m = json.loads((out/"metrics.json").read_text())
    assert m["steps"] == 4 and 0 < m["self_reenactment"]["ssim"] <= 1 and np.isfinite(m["self_reenactment"]["psnr"])
    assert 0 <= m["leakage"]["accuracy"] <= 1 and m["leakage"]["n_classes"] == 2
    assert 0 < m["diagnostics_seconds"] < m["train_seconds"], m                # the end-of-training diagnostics, timed apart
    assert (out/"figures"/"losses.png").stat().st_size > 1000 and (out/"figures"/"reenactment.png").exists()
    assert len(list((out/"latents").rglob("*.npz"))) == 8
    assert sorted(p.name for p in (out/"samples").glob("*.png")) == ["step_000002.png", "step_000004.png"]
    nb = json.loads((out/"stage1_train.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    # stage 2 on that run's latents: the chain the quickstart runs (a few steps, every output written)
    sets2 = [f"data_dir={tmp_path/'data'}", f"stage1_run={out}", "held_out=2", "window=16", "steps=4", "batch_size=4",
             "log_every=1", "sample_every=2", "ckpt_every=2", "sample_steps=3", "eval_steps=3", "items_per_clip=2"]
    out2 = run_experiment("stage2_train", "tiny_cpu", sets2, runs=tmp_path/"runs", progress=False)
    names = {p.name for p in out2.iterdir()}
    assert {"stage2_train.ipynb", "config.json", "metrics.csv", "metrics.json", "ckpt", "figures", "samples", "tb"} <= names, names
    m2 = json.loads((out2/"metrics.json").read_text())
    assert m2["steps"] == 4 and m2["config"]["variant"] == "mfcc_full_control" and m2["config"]["window"] == 16   # the stage2_tiny_cpu preset, overridden
    assert (m2["config"]["prediction"], m2["config"]["loss_weight"]) == ("sample", "min_snr")              # the CPU recipe
    assert -1 <= m2["eval"]["mouth_r"] <= 1 and -1 <= m2["eval"]["pose_r"] <= 1 and m2["eval"]["n_clips"] == 4
    assert (out2/"figures"/"mouth_and_pose.png").stat().st_size > 1000
    assert sorted(p.name for p in (out2/"samples").glob("*.png")) == ["step_000002.png", "step_000004.png"]
    # the oracle diagnostic (α from the ground truth): the probe reads the mouth (ridge-shrunk on 1-s clips: not exactly)
    out3 = run_experiment("stage2_train", "tiny_cpu", [*sets2, "steps=2", "oracle=true"], runs=tmp_path/"runs", progress=False)
    m3 = json.loads((out3/"metrics.json").read_text())
    assert m3["eval"]["probe_mouth_r"] > max(0.5, m2["eval"]["probe_mouth_r"]) and (out3/"oracle_latents"/"latents.json").exists()

def test_papermill_stage1_oracle_experiment(tmp_path):
    "code_source=oracle end to end: the run writes its diagnostics (render gain per factor, exact cross-reenactment), no encoder probes."
    from anitalker.cli import run_experiment
    sets = [f"data_dir={tmp_path/'data'}", "data_ids=4", "data_clips=2", "data_seconds=1.0", "held_out=2", "steps=2",
            "log_every=1", "sample_every=2", "ckpt_every=2", "eval_every=2", "eval_pairs_per_clip=2", "batch_size=4",
            "code_source=oracle", "write_latents=false"]
    out = run_experiment("stage1_train", "tiny_cpu", sets, runs=tmp_path/"runs", progress=False)
    d = json.loads((out/"metrics.json").read_text())["diagnostics"]
    assert d["oracle"] is True and "probe" not in d and "spread" not in d
    assert set(d["response"]) == {"yaw", "pitch", "roll", "tx", "zoom", "mouth", "blink"}
    assert all(np.isfinite(v["gain"]) for v in d["response"].values())
    assert np.isfinite(d["cross_reenactment"]["psnr"]) and d["cross_reenactment"]["n_pairs"] == 2
    assert (out/"figures"/"diagnostics.png").stat().st_size > 1000 and (out/"figures"/"cross_truth.png").exists()

def test_a_resume_with_other_values_is_refused_and_extending_the_steps_is_recorded(tmp_path, data, cli):
    "The run folder's config.json is the truth: a changed lr or motion_dim would mix two configs (or fail deep inside)."
    p = params(tmp_path, data, steps=2)
    assert cli("train", "stage1", tmp_path/"r", "--params", p, "--no-progress").returncode == 0
    for change, line in (("lr=0.01", "  lr: the run has 0.002, this call 0.01"), ("motion_dim=10", "  motion_dim: the run has 20")):
        r = cli("train", "stage1", tmp_path/"r", "--params", p, "--set", change, "--no-progress")
        assert r.returncode == 1 and line in r.stderr and "start a new run folder" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    r = cli("train", "stage1", tmp_path/"r", "--params", p, "--set", "steps=3", "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(tmp_path/"r"/"ckpt"/"last.pt")["step"] == 3
    rec = [json.loads(l) for l in (tmp_path/"r"/"config_changes.jsonl").read_text().splitlines()]
    assert rec[-1]["changes"] == {"steps": [2, 3]} and json.loads((tmp_path/"r"/"config.json").read_text())["train"]["steps"] == 3
