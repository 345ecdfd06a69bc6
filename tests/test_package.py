"""The kit as a package: a wheel built from the repo, installed with its dependencies into a fresh venv, runs the quickstart
from a folder that is not a checkout (the experiment notebooks and presets ship as package data)."""
import os, re, shutil, subprocess, sys, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data_dir=data", "stage1_steps=2", "stage2_steps=2", "gen_steps=3", "stage1.data_ids=4", "stage1.data_seconds=1.0",
        "stage1.held_out=2", "stage1.batch_size=4", "stage1.eval_pairs_per_clip=2", "stage2.window=16", "stage2.batch_size=4",
        "stage2.items_per_clip=2", "stage2.eval_steps=3"]

def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd[:4]} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r

@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out, had_build = tmp_path_factory.mktemp("wheel"), (ROOT/"build").exists()
    r = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", out, ROOT])
    if not had_build: shutil.rmtree(ROOT/"build", ignore_errors=True)                  # setuptools builds in the tree
    return next(out.glob("anitalker-*.whl")), r.stdout + r.stderr

def test_the_wheel_builds_without_warnings_and_holds_what_the_commands_need(wheel):
    path, log = wheel
    warns = sorted(set(re.findall(r"\b\w+Warning\b: .{0,80}", log)))   # setuptools' deprecation and package-data warnings
    assert not warns, warns
    names = zipfile.ZipFile(path).namelist()
    for nb in ["stage1_train", "stage2_train", "generate"]: assert f"anitalker/experiments/{nb}.ipynb" in names, nb
    for y in ["tiny_cpu", "stage2_tiny_cpu", "paper_gpu"]: assert f"anitalker/experiments/params/{y}.yaml" in names, y
    assert "anitalker/reports/quickstart.html" in names                      # the report template
    assert "anitalker/reference/official_stage1_state_dict.json" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(path).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert re.search(r"^License(-Expression)?: Apache-2.0$", meta, re.M)           # an SPDX expression, no License classifier
    for dep in ["papermill", "ipykernel", "torch"]: assert re.search(rf"^Requires-Dist: {dep}\b", meta, re.M), dep

def test_a_fresh_venv_from_the_wheel_runs_the_quickstart_outside_a_checkout(wheel, tmp_path):
    from anitalker.data.media import probe
    venv, work = tmp_path/"venv", tmp_path/"work"; work.mkdir()
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg",
           "NO_ALBUMENTATIONS_UPDATE": "1"}      # nothing of this checkout or its venv (no PYTHONPATH; cwd is not the repo)
    try:
        run([sys.executable, "-m", "venv", venv], cwd=work, env=env)
        run([venv/"bin"/"python", "-m", "pip", "install", "-q", wheel[0]], cwd=work, env=env, timeout=1200)   # its own dependencies
        r = run([venv/"bin"/"anitalker", "quickstart", "--out", "runs/qs", "--set", *TINY], cwd=work, env=env, timeout=1200)
        assert not re.search(r"\b\w+Warning\b", r.stdout + r.stderr), (r.stdout + r.stderr)[-2000:]
        qs = work/"runs"/"qs"
        info = probe(qs/"quickstart.mp4")
        assert info["has_video"] and info["has_audio"] and info["duration"] > 0.3 and info["width"] >= 64, info
        assert (qs/"report.html").stat().st_size > 1000 and (qs/"metrics.json").exists()
        assert not (work/"nbs").exists()                                                  # nothing was looked up in a checkout
    finally: shutil.rmtree(venv, ignore_errors=True)                                      # about 6.6 GB
