"""Issue 18's sweep: bad inputs and faults a careless or hostile user causes, tried on every command that writes and on
the Python API (paths, kinds, file systems, signals, stale temp files, umask modes), asserted on the files left behind:
inputs' bytes unchanged (hashes), no temp file, no half-written output, the modes the umask gives."""
import contextlib, errno, hashlib, json, os, re, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pytest, yaml
from conftest import wait_for_output

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TEMP = re.compile(r"^\..+\.\d+\.\w+\.tmp(\.\w+)?$|^\.c\d\d\.\w{8}$")   # core.temp_beside names (and old mkdtemp ones)

def tree(root) -> dict:
    "{relative path: (sha256 or 'dir', mode)} of everything under root: what 'unchanged' means here."
    root = Path(root); out = {}
    for p in sorted([root, *root.rglob("*")]) if root.is_dir() else [root]:
        m = p.stat().st_mode & 0o777
        out[str(p.relative_to(root))] = ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest(), m)
    return out

def temps(root) -> list: return [p for p in Path(root).rglob(".*") if TEMP.match(p.name)]

def cli(argv, capsys) -> tuple[int, str]:
    "`anitalker ARGV` in this process: (exit status, stderr)."
    from anitalker.cli import main
    capsys.readouterr()
    try: rc = main([str(a) for a in argv])
    except SystemExit as e: rc = e.code
    return rc, capsys.readouterr().err

@pytest.fixture(scope="module")
def w(tmp_path_factory):
    "A small world of inputs: a 4-speaker dataset, a source folder of one video, a CSV, params, junk."
    from anitalker.data.synthetic import make_dataset
    w = tmp_path_factory.mktemp("world")
    make_dataset(w/"data", n_ids=4, clips_per_id=1, seconds=1.0, size=64, seed=0, workers=1, progress=False)
    (w/"src"/"spk").mkdir(parents=True); shutil.copy(w/"data/clips/syn0000/c00/video.mp4", w/"src/spk/v.mp4")
    (w/"csvdir").mkdir(); (w/"csvdir"/"map.csv").write_text("path,speaker\nspk/v.mp4,spk\n")
    (w/"file.txt").write_text("a file, not a folder")
    from PIL import Image
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(w/"still.png")
    (w/"junk.bin").write_bytes(np.random.default_rng(0).bytes(3000))
    (w/"bad.yaml").write_text("steps: [")
    (w/"p.yaml").write_text(yaml.safe_dump(train_params(w/"data")))
    (w/"p2.yaml").write_text(yaml.safe_dump({"data_dir": str(w/"data"), "latents": str(w/"s1"/"latents")}))
    return w

def train_params(data, **kw):
    return {"preset": "tiny", "data_dir": str(data), "held_out": 1, "steps": 2, "batch_size": 2, "perceptual": "none",
            "metric": "aam", "use_mi": True, "adv_start": 0, "n_samples": 1, "items_per_clip": 8, "cpu": True,
            "log_every": 1, "ckpt_every": 100, "sample_every": 0, **kw}

SYN = ["--ids", 1, "--clips", 1, "--seconds", 1, "--workers", 1]
BAD = [  # (case, argv with {w}, what the one line must say); every one: exit 1 before any work, nothing changed
    ("synth OUT is a file", ["synth", "{w}/file.txt", *SYN], "is a file, expected a folder"),
    ("synth OUT in a missing folder", ["synth", "{w}/no/such/d", *SYN], "does not exist (create it first)"),
    ("synth OUT where no file can be made", ["synth", "/proc/anitalker_d", *SYN], "cannot write in '/proc'"),
    ("synth OUT is /dev/null", ["synth", "/dev/null", *SYN], "is a file, expected a folder"),
    ("prep OUT is SRC", ["prep", "{w}/src", "{w}/src"], "is the source folder"),
    ("prep OUT inside SRC", ["prep", "{w}/src", "{w}/src/spk/out"], "is inside the source folder"),
    ("prep SRC inside OUT", ["prep", "{w}/src/spk", "{w}/src"], "contains the source folder"),
    ("prep OUT holds the --csv", ["prep", "{w}/src", "{w}/csvdir", "--csv", "{w}/csvdir/map.csv"], "contains the CSV"),
    ("prep OUT is the --csv", ["prep", "{w}/src", "{w}/csvdir/map.csv", "--csv", "{w}/csvdir/map.csv"], "is a file"),
    ("prep SRC missing", ["prep", "{w}/nothing", "{w}/out"], "source folder '{w}/nothing' does not exist"),
    ("prep SRC is a file", ["prep", "{w}/file.txt", "{w}/out"], "is a file, expected a folder"),
    ("prep --csv missing", ["prep", "{w}/src", "{w}/out", "--csv", "{w}/no.csv"], "CSV file '{w}/no.csv' does not"),
    ("prep --csv is a folder", ["prep", "{w}/src", "{w}/out", "--csv", "{w}/csvdir"], "is a folder, expected a file"),
    ("features ROOT missing", ["features", "{w}/nothing"], "'{w}/nothing' does not exist"),
    ("features ROOT is a file", ["features", "{w}/file.txt"], "is a file, expected a folder"),
    ("features ROOT takes no file", ["features", "/proc"], "cannot write in '/proc'"),
    ("train OUT is a file", ["train", "stage1", "{w}/file.txt", "--params", "{w}/p.yaml"], "is a file, expected a"),
    ("train OUT in a missing folder", ["train", "stage1", "{w}/no/run", "--params", "{w}/p.yaml"], "does not exist"),
    ("train OUT is the data", ["train", "stage1", "{w}/data", "--params", "{w}/p.yaml"], "is the data folder"),
    ("train OUT inside the data", ["train", "stage1", "{w}/data/run", "--params", "{w}/p.yaml"], "is inside the data"),
    ("train OUT holds the data", ["train", "stage1", "{w}", "--params", "{w}/p.yaml"], "contains the"),
    ("train OUT takes no file", ["train", "stage1", "/proc/anitalker_r", "--params", "{w}/p.yaml"], "cannot write in"),
    ("train stage2 OUT holds its stage-1 latents", ["train", "stage2", "{w}/s1", "--params", "{w}/p2.yaml"],
     "contains the stage-1 latents folder"),
    ("train --params missing", ["train", "stage1", "{w}/r", "--params", "{w}/no.yaml"], "params file '{w}/no.yaml' does"),
    ("train --params is a folder", ["train", "stage1", "{w}/r", "--params", "{w}/src"], "is a folder, expected a file"),
    ("train --params is binary", ["train", "stage1", "{w}/r", "--params", "{w}/junk.bin"], "is not YAML text"),
    ("train --params is broken YAML", ["train", "stage1", "{w}/r", "--params", "{w}/bad.yaml"], "is not YAML text"),
    ("train --set with broken YAML", ["train", "stage1", "{w}/r", "--set", "steps=["], "the value is not YAML"),
    ("experiment --runs is a file", ["experiment", "stage1_train", "--runs", "{w}/file.txt", "--id", "x"], "is a file"),
    ("experiment --id escapes --runs", ["experiment", "stage1_train", "--runs", "{w}/runs", "--id", "../x"],
     "not a plain folder name"),
    ("experiment --runs takes no file", ["experiment", "stage1_train", "--runs", "/proc/x", "--id", "x"], "cannot write"),
    ("quickstart --out is a file", ["quickstart", "--out", "{w}/file.txt"], "is a file, expected a folder"),
    ("quickstart --out is the data", ["quickstart", "--out", "{w}/data", "--set", "data_dir={w}/data"], "is the data"),
    ("quickstart --out holds the data", ["quickstart", "--out", "{w}", "--set", "data_dir={w}/data"], "contains the data"),
    ("quickstart --out takes no file", ["quickstart", "--out", "/proc/anitalker_q"], "cannot write in '/proc'"),
    ("bench --json-out is a folder", ["bench", "--quick", "--json-out", "{w}/src"], "is a folder, expected a file"),
    ("bench --json-out in a missing folder", ["bench", "--quick", "--json-out", "{w}/no/b.json"], "does not exist"),
    ("bench --json-out is --stage1", ["bench", "--quick", "--stage1", "{w}/file.txt", "--json-out", "{w}/file.txt"],
     "is the stage-1 checkpoint"),
    ("bench --json-out is /dev/null", ["bench", "--quick", "--json-out", "/dev/null"], "not a regular file"),
    ("generate --image is a text file", ["generate", "--image", "{w}/file.txt", "--audio", "{w}/data/clips/syn0000/c00/"
     "audio.wav", "--run", "{w}/data", "--out", "{w}/o.mp4"], "cannot be read (UnidentifiedImageError)"),
    ("generate --image is a folder", ["generate", "--image", "{w}/src", "--audio", "{w}/file.txt", "--run", "{w}/data",
     "--out", "{w}/o.mp4"], "is a folder, expected a file"),
    ("generate --audio is a folder", ["generate", "--image", "{w}/still.png", "--audio", "{w}/src", "--run", "{w}/data",
     "--out", "{w}/o.mp4"], "audio '{w}/src' is a folder, expected a file"),
    ("generate --audio is /dev/zero", ["generate", "--image", "{w}/src/spk/v.mp4", "--audio", "/dev/zero", "--run",
     "{w}/data", "--out", "{w}/o.mp4"], "not a regular file"),
    ("reenact --driving is a folder", ["reenact", "--source", "{w}/still.png", "--driving", "{w}/src",
     "--run", "{w}/data", "--out", "{w}/o.mp4"], "driving video '{w}/src' is a folder, expected a file"),
    ("reenact --source is a video", ["reenact", "--source", "{w}/src/spk/v.mp4", "--driving", "{w}/src/spk/v.mp4",
     "--run", "{w}/data", "--out", "{w}/o.mp4"], "cannot be read (UnidentifiedImageError)"),
    ("watermark detect a folder", ["watermark", "detect", "{w}/src"], "video '{w}/src' is a folder, expected a file"),
]

@pytest.mark.parametrize("case,argv,says", BAD, ids=[c for c, *_ in BAD])
def test_a_bad_path_is_one_line_and_changes_nothing(w, capsys, case, argv, says):
    before = tree(w)
    rc, err = cli([str(a).format(w=w) for a in argv], capsys)
    assert rc == 1 and says.format(w=w) in err, err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-2000:]
    assert tree(w) == before and not temps(w)                            # nothing written, nothing destroyed
    assert not Path("/proc/anitalker_d").exists()

def test_a_video_without_sound_as_audio_and_a_still_as_driving_video_are_named(w, capsys, tmp_path):
    from PIL import Image
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path/"still.png")
    rc, err = cli(["generate", "--image", tmp_path/"still.png", "--audio", w/"src/spk/v.mp4", "--run", w/"data",
                   "--out", tmp_path/"o.mp4"], capsys)
    assert rc == 1 and "has no audio stream" in err, err
    rc, err = cli(["reenact", "--source", tmp_path/"still.png", "--driving", w/"data/clips/syn0000/c00/audio.wav",
                   "--run", w/"data", "--out", tmp_path/"o.mp4"], capsys)
    assert rc == 1 and "has no video stream" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]

@pytest.mark.parametrize("argv", [[], ["synth"], ["synth", "x", "--ids", "0"], ["nosuch"], ["train", "stage3", "x"],
                                  ["generate", "--image", "a.png"]])
def test_usage_errors_exit_2(capsys, argv):
    assert cli(argv, capsys)[0] == 2

def test_an_unreadable_input_is_named(w, capsys, monkeypatch):
    "Root ignores permission bits, so the refusal to open is simulated where the kit opens the file."
    real = os.open
    def deny(p, *a, **k):
        if str(p) == str(w/"p.yaml"): raise PermissionError(errno.EACCES, "Permission denied")
        return real(p, *a, **k)
    monkeypatch.setattr(os, "open", deny)
    rc, err = cli(["train", "stage1", w/"r", "--params", w/"p.yaml"], capsys)
    assert rc == 1 and f"params file '{w}/p.yaml' cannot be read: Permission denied" in err, err

def test_a_full_disk_is_one_line_and_leaves_no_temp(w, capsys, tmp_path, monkeypatch):
    "ENOSPC at the moment a file is flushed (where a full disk shows up): exit 1, the file named, no temp, no clip."
    real = os.fsync
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    rc, err = cli(["synth", tmp_path/"d", *SYN], capsys)
    monkeypatch.setattr(os, "fsync", real)
    assert rc == 1 and "No space left on device" in err and "Traceback" not in err, err
    assert not temps(tmp_path) and not list((tmp_path/"d").rglob("meta.json")) and not (tmp_path/"d"/"manifest.json").exists()

@contextlib.contextmanager
def mounted(path, opts):
    "A tmpfs mounted at `path`, or None where this machine allows no mount (not root, no CAP_SYS_ADMIN)."
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode:
        yield None; return
    try: yield path
    finally: subprocess.run(["umount", "-l", str(path)], capture_output=True)

def test_a_real_full_disk_and_a_read_only_file_system(w, tmp_path):
    "A 48 kB tmpfs that fills up, and a read-only one; where no mount is allowed, /proc (takes no file) stands in."
    with mounted(tmp_path/"small", "size=48k") as m:                      # the first clip's video fills it
        if m is not None:
            r = subprocess.run([sys.executable, "-m", "anitalker.cli", "synth", str(m/"d"), "--ids", "4", "--clips", "1",
                                "--seconds", "2", "--size", "128", "--workers", "1"], env=ENV, capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 1 and "Traceback" not in r.stderr and "error:" in r.stderr, r.stderr[-2000:]
            assert not temps(m)
    with mounted(tmp_path/"ro", "ro") as m:
        where, why = (m, "Read-only file system") if m is not None else (Path("/proc"), "cannot write in '/proc'")
        for argv in (["synth", where/"d", *SYN], ["train", "stage1", where/"r", "--params", w/"p.yaml"],
                     ["bench", "--quick", "--json-out", where/"b.json"], ["quickstart", "--out", where/"q"],
                     *([["features", m]] if m is not None else [])):
            r = subprocess.run([sys.executable, "-m", "anitalker.cli", *map(str, argv)], env=ENV, capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 1 and why in r.stderr and "Traceback" not in r.stderr, r.stderr

def _umask(m): return lambda: os.umask(m)

@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_synth_stopped_by_a_signal_leaves_whole_clips_only_and_resumes(tmp_path, sig):
    out, n = tmp_path/"d", 30
    argv = [sys.executable, "-m", "anitalker.cli", "synth", str(out), "--ids", str(n), "--clips", "1", "--seconds", "1",
            "--workers", "2"]
    p = subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, text=True, preexec_fn=_umask(0o027))
    said = wait_for_output(p, rf"\b([2-9]|[12]\d)/{n}\b")                # tqdm: two clips written
    assert len(list(out.glob("clips/*/c00"))) >= 2
    p.send_signal(getattr(signal, sig)); t0 = time.time()
    rc = p.wait(timeout=60); said += p.stderr.read()
    assert rc == 128 + getattr(signal, sig), said[-2000:]
    assert time.time() - t0 < 20, "the workers were not stopped: they finished the whole job first"
    assert "Traceback" not in said
    assert not temps(out) and not (out/"manifest.json").exists()
    done = list(out.glob("clips/*/c00"))
    assert len(done) < n and all((c/"meta.json").exists() and (c/"attrs.npz").exists() for c in done)
    r = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=_umask(0o027))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out/"manifest.json").read_text())["n_kept"] == n and not temps(out)
    c = out/"clips"/"syn0000"/"c00"
    assert [c.stat().st_mode & 0o777, (c/"video.mp4").stat().st_mode & 0o777, (out/"manifest.json").stat().st_mode & 0o777
            ] == [0o750, 0o640, 0o640]                                   # umask 027: the modes open() / mkdir give

def test_train_stopped_by_sigterm_while_checkpointing_resumes_and_leaves_no_temp(w, tmp_path):
    from anitalker.core import load_checkpoint
    (tmp_path/"p.yaml").write_text(yaml.safe_dump(train_params(w/"data", steps=8, ckpt_every=1)))
    argv = [sys.executable, "-m", "anitalker.cli", "train", "stage1", str(tmp_path/"r"), "--params", str(tmp_path/"p.yaml")]
    p = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_umask(0o027))
    ck = tmp_path/"r"/"ckpt"/"last.pt"
    said = wait_for_output(p, r"\b1/8\b")                       # step 1 is done: its checkpoint is being written
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=120); said += p.stderr.read()
    assert rc == 143 and "Traceback" not in said, said[-2000:]
    assert not temps(tmp_path/"r")
    if ck.exists(): assert load_checkpoint(ck)["step"] < 8                  # a whole checkpoint or none
    r = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=_umask(0o022))
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(ck)["step"] == 8 and not temps(tmp_path/"r")
    assert (tmp_path/"r"/"config.json").stat().st_mode & 0o777 in (0o640, 0o644)

def test_stale_temps_of_killed_runs_are_removed_by_the_next_run_and_live_ones_kept(w, tmp_path, capsys):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    d = tmp_path/"d"; assert cli(["synth", d, *SYN], capsys)[0] == 0
    spk = d/"clips"/"syn0000"
    stale = [spk/f".c00.{dead}.abcd1234.tmp", d/f".manifest.json.{dead}.abcd1234.tmp", spk/f".c01.{dead}.zz_z9999.tmp"]
    stale[0].mkdir(); (stale[0]/"video.mp4").write_bytes(b"half"); stale[1].write_text("{"); stale[2].mkdir()
    live = spk/".c00.1.abcd1234.tmp"; live.write_text("pid 1 is alive")
    assert cli(["synth", d, *SYN], capsys)[0] == 0
    assert not any(p.exists() for p in stale) and live.exists()
    assert cli(["features", d], capsys)[0] == 0
    f = d/"features"/"mfcc"/"syn0000"/f".c00.npy.{dead}.abcd1234.tmp"; f.write_bytes(b"half")
    assert cli(["features", d], capsys)[0] == 0 and not f.exists()

@pytest.mark.parametrize("umask,dmode,fmode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_umask_modes_of_files_and_folders(tmp_path, capsys, umask, dmode, fmode):
    old = os.umask(umask)
    try:
        assert cli(["synth", tmp_path/"d", *SYN], capsys)[0] == 0
        assert cli(["features", tmp_path/"d"], capsys)[0] == 0
    finally: os.umask(old)
    c = tmp_path/"d"/"clips"/"syn0000"/"c00"
    assert c.stat().st_mode & 0o777 == dmode                               # was 0700 (mkdtemp)
    for f in [*c.iterdir(), tmp_path/"d"/"manifest.json", *(tmp_path/"d"/"features").rglob("*.npy")]:
        assert f.stat().st_mode & 0o777 == fmode, f

def test_bench_json_out_is_written_atomically_with_the_umask_mode(tmp_path, capsys):
    old = os.umask(0o027)
    try: rc, _ = cli(["bench", "--quick", "--only", "stage1", "--json-out", tmp_path/"b.json"], capsys)
    finally: os.umask(old)
    assert rc == 0 and json.loads((tmp_path/"b.json").read_text())["rows"]
    assert (tmp_path/"b.json").stat().st_mode & 0o777 == 0o640 and not temps(tmp_path)

def test_the_python_api_refuses_the_same(w, tmp_path):
    from anitalker.core import OutputError
    from anitalker.data.synthetic import make_dataset
    from anitalker.data.prep import prepare_dataset
    from anitalker.data.datasets import extract_features
    from anitalker.jobs.runner import run_experiment
    before = tree(w)
    with pytest.raises(OutputError, match="is a file, expected a folder"): make_dataset(w/"file.txt", 1, 1, 1.0)
    with pytest.raises(OutputError, match="is the source folder"): prepare_dataset(w/"src", w/"src")
    with pytest.raises(NotADirectoryError, match="is a file, expected a folder"): extract_features(w/"file.txt")
    with pytest.raises(OutputError, match="is a file"): run_experiment("stage1_train", runs=w/"file.txt", run_id="x")
    assert tree(w) == before
    make_dataset(tmp_path/"a"/"b"/"d", 1, 1, 1.0, workers=1, progress=False)   # the API makes missing parents
    assert (tmp_path/"a"/"b"/"d"/"manifest.json").exists()
