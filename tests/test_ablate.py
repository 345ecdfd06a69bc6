"""`anitalker ablate` with the real experiment notebooks at toy size (2 training steps on 4 built-in speakers of 1 s):
the local launcher through the CLI (a failing cell is recorded and the others finish; a rerun skips what is done;
a run stopped by SIGTERM resumes; LPIPS from a backbone file the test writes, absent without one), and the Slurm code
path on submitit's local executor with two training processes per cell (accelerate launch)."""
import json, os, signal, subprocess, sys
from pathlib import Path
import pytest, torch, yaml
from anitalker.jobs.ablate import ablate, cell_status, load_grid, expand_grid
from conftest import wait_for_output

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TOY = {"params": "tiny_cpu", "steps": 2, "data_ids": 4, "data_seconds": 1.0, "held_out": 2, "batch_size": 4,
       "eval_pairs_per_clip": 2, "log_every": 1, "write_latents": False}

@pytest.fixture
def grid(tmp_path):
    def make(cells:dict, seeds=(0,), **base):
        p = tmp_path/"toy.yaml"
        p.write_text(yaml.safe_dump({"experiments": ["stage1_train"], "seeds": list(seeds), "cells": cells,
                                     "metrics": {"PSNR": "self_reenactment.psnr", "leakage": "-leakage.accuracy",
                                                 "LPIPS": "-self_reenactment.lpips"},
                                     "base": {"cpu": {"stage1_train": {**TOY, "data_dir": str(tmp_path/"data"),
                                                                       **base}}}}, sort_keys=False))
        return p
    return make

def alexnet_file(path):
    "torchvision AlexNet's `features.*` tensors (random: the test checks the plumbing, not the values), as a file."
    import torchvision
    torch.save({k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")}, path)
    return path

def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "anitalker.cli", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=900)

def test_local_grid_records_a_failure_and_skips_what_is_done(grid, tmp_path):
    g = grid({"d6": {"motion_dim": 6}, "broken": {"motion_dim": 0}},          # motion_dim 0: the config refuses it
             lpips_weights=str(alexnet_file(tmp_path/"alexnet.pth")))
    r = cli("ablate", g, "--out", tmp_path/"abl", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "1 run(s) failed" in r.stderr and "broken" in r.stderr
    ok, bad = tmp_path/"abl/toy/d6/seed0", tmp_path/"abl/toy/broken/seed0"
    m = json.loads((ok/"stage1"/"metrics.json").read_text())
    assert m["steps"] == 2 and m["config"]["motion_dim"] == 6 and (ok/"stage1"/"stage1_train.ipynb").exists()
    assert json.loads((ok/"done.json").read_text())["status"] == "done"
    assert "motion_dim must be >= 1" in json.loads((bad/"failed.json").read_text())["error"]
    assert "1 done, 1 failed" in r.stdout
    gd = tmp_path/"abl/toy"                                                        # the summary of what finished
    md = (gd/"summary.md").read_text(); psnr, lp = m["self_reenactment"]["psnr"], m["self_reenactment"]["lpips"]
    assert 0 < lp < 2 and f"| d6 | 0 | {psnr:.4g} | " in md and f" | {lp:.4g} |" in md and "| broken | – | absent |" in md
    assert "data:image/png" in (gd/"summary.html").read_text() and (gd/"summary_cross.png").exists()
    stamp = (ok/"done.json").stat().st_mtime_ns
    r2 = cli("ablate", g, "--out", tmp_path/"abl", cwd=tmp_path)                   # again: only the failed cell runs
    assert r2.returncode == 1 and "2 run(s) (1 finished before), 1 to run" in r2.stdout
    assert (ok/"done.json").stat().st_mtime_ns == stamp

def test_a_stopped_grid_resumes(grid, tmp_path):
    g = grid({"d6": {"motion_dim": 6}}, seeds=(0, 1))
    p = subprocess.Popen([sys.executable, "-m", "anitalker.cli", "ablate", str(g), "--out", str(tmp_path/"abl")],
                         cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=(tmp_path/"err.txt").open("w"), text=True)
    wait_for_output(p, r"d6 seed 1: stage1_train", timeout=600, stream="stdout")   # seed 0 finished, seed 1 started
    p.send_signal(signal.SIGTERM); assert p.wait(timeout=120) == 143
    runs = expand_grid(load_grid(g), out=tmp_path/"abl")
    assert [cell_status(r) for r in runs] == ["done", "partial"]
    r = cli("ablate", g, "--out", tmp_path/"abl", cwd=tmp_path)
    assert r.returncode == 0 and "2 run(s) (1 finished before), 1 to run" in r.stdout, r.stderr[-3000:]
    assert [cell_status(r) for r in runs] == ["done", "done"]
    m = json.loads((tmp_path/"abl/toy/d6/seed1/stage1/metrics.json").read_text())
    assert "psnr" in m["self_reenactment"] and "lpips" not in m["self_reenactment"]   # no backbone file: no LPIPS

def test_slurm_path_on_submitits_local_executor_with_two_processes(grid, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = grid({"d6": {"motion_dim": 6}})
    res = ablate(g, launcher="submitit-local", processes=2, out=tmp_path/"abl", log=lambda s: None)
    assert res["failed"] == [] and (tmp_path/"abl/toy/.submitit").is_dir()
    run = tmp_path/"abl/toy/d6/seed0/stage1"
    assert json.loads((run/"metrics.json").read_text())["steps"] == 2
    assert torch.load(run/"ckpt"/"last.pt", weights_only=False)["world"] == 2        # trained by 2 processes

def test_stage2_grid_adapter_on_and_off(tmp_path):
    "The shipped adapter grid at toy size: stage 1 then stage 2 per cell, the no-adapter cell built without heads."
    s1 = {k: v for k, v in TOY.items() if k != "params"} | {"data_dir": tmp_path/"data", "write_latents": True}
    s2 = {"data_dir": tmp_path/"data", "held_out": 2, "window": 16, "steps": 2, "batch_size": 4, "sample_steps": 3,
          "eval_steps": 3, "items_per_clip": 2}
    sets = [f"{k}={v}" for k, v in s1.items()] + [f"stage2.{k}={v}" for k, v in s2.items()]
    r = cli("ablate", "adapter", "--seeds", "0", "--out", tmp_path/"abl", "--no-images",
            *[a for s in sets for a in ("--set", s)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    m = {c: json.loads((tmp_path/f"abl/adapter/{c}/seed0/stage2/metrics.json").read_text())
         for c in ("adapter", "no_adapter")}
    assert (m["adapter"]["config"]["variant"], m["no_adapter"]["config"]["variant"]) == ("mfcc_full_control",
                                                                                         "mfcc_audio_only")
    heads = lambda c: {k.split(".")[1] for k in torch.load(tmp_path/f"abl/adapter/{c}/seed0/stage2/ckpt/last.pt",
                                                           weights_only=False)["models"]["net"] if "predictor" in k}
    assert heads("no_adapter") == set() and len(heads("adapter")) == 3
    md = (tmp_path/"abl/adapter/summary.md").read_text()
    for c in m: assert f"| {c} | 0 | {m[c]['eval']['pose_r']:.4g} | {m[c]['eval']['mouth_r']:.4g} |" in md, md
    assert "not enough seeds" in md                                 # one seed: no verdict claimed
    assert (tmp_path/"abl/adapter/summary_stage2.png").stat().st_size > 10_000      # each cell's mouth / pose figure
