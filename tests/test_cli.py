"The `anitalker` console script, run as a user would run it."
import json

def test_info(cli):
    r = cli("info")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert {"kit_version", "torch", "torch_threads", "cpu"} <= set(info)

def test_quickstart_writes_report_and_reuses_folder(cli, tmp_path):
    r = cli("quickstart", "--out", "runs/qs", "--frames", "25")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "runs/qs/report.json").read_text())
    assert rep["ok"] is True
    assert rep["steps"]["modulated_conv"]["max_abs_diff_batched_vs_grouped"] < 1e-4
    assert rep["steps"]["conformer"]["output_shape"] == [2, 25, 64]
    assert rep["steps"]["synthetic_data"]["clips"] == 16 and rep["steps"]["stage1_forward"]["recon_shape"] == [4, 3, 64, 64]
    assert json.loads((tmp_path / "runs/qs/config.json").read_text())["frames"] == 25
    r2 = cli("quickstart", "--out", "runs/qs", "--frames", "25", "--seed", "1")   # re-run into the same folder
    assert r2.returncode == 0, r2.stderr
    assert json.loads((tmp_path / "runs/qs/config.json").read_text())["seed"] == 1
    assert json.loads((tmp_path / "runs/qs/report.json").read_text())["steps"]["synthetic_data"]["clips"] == 16

def test_bad_arguments_name_the_argument(cli, tmp_path):
    r = cli("quickstart", "--out", "runs/bad", "--frames", "-3")
    assert r.returncode == 2
    assert "--frames" in r.stderr and "positive integer" in r.stderr
    assert not (tmp_path / "runs/bad").exists()           # nothing half-written
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
    assert {("render", 1, "float32"), ("render", 8, "float32"), ("render", 8, "bfloat16"), ("encode", 1, "float32")} <= rows
    assert all(x["ms_per_frame"] > 0 for x in s1)
    assert {(x["module"], x["dtype"]) for x in s2} >= {("s2.condition", "float32"), ("s2.ddim_step", "float32"),
                                                        ("s2.sample_2s", "float32"), ("s2.sample_6s", "bfloat16")}
    e2 = [x for x in rep["rows"] if x["module"].startswith("e2e.")]
    assert all(x["ms"] > 0 for x in s2) and len(s1) + len(s2) + len(e2) == len(rep["rows"])
    assert {(x["module"], x["dtype"], x["frames"]) for x in e2} == {("e2e.generate_2s", "float32", 50), ("e2e.generate_2s", "bfloat16", 50)}
    r = cli("bench", "--quick", "--json", "--only", "stage2")
    assert r.returncode == 0, r.stderr
    assert all("ms" in x for x in json.loads(r.stdout)["rows"])

def test_bench_bad_checkpoint_is_one_clear_line(cli, tmp_path):
    (tmp_path / "junk.ckpt").write_text("junk")
    r = cli("bench", "--stage1", str(tmp_path / "junk.ckpt"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "junk.ckpt" in r.stderr and "is not a checkpoint" in r.stderr
    r = cli("bench", "--stage1", str(tmp_path / "missing.ckpt"))
    assert r.returncode == 1 and "missing.ckpt" in r.stderr and "does not exist" in r.stderr
