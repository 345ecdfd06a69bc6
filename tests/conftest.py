import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

@pytest.fixture
def cli(tmp_path):
    "Run the `anitalker` console script; returns CompletedProcess (text)."
    exe = Path(sys.executable).parent / "anitalker"
    def run(*args, check=False, timeout=600):
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=tmp_path, timeout=timeout, check=check)
    return run
