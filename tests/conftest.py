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

def wait_for_output(proc, pattern:str, timeout:float=120, stream:str="stderr") -> str:
    """Read a running process's pipe until the regex `pattern` appears in it; returns what was read. `select` waits on
    the pipe itself (no polling loop, no sleep); the process ending first, or `timeout`, fails with what it said."""
    import re, select, time
    fd, buf, end = getattr(proc, stream).fileno(), "", time.monotonic() + timeout
    while not re.search(pattern, buf):
        left = end - time.monotonic()
        assert left > 0, f"no {pattern!r} after {timeout} s: {buf[-2000:]}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"the process ended before {pattern!r}: {buf[-2000:]}"
            buf += chunk.decode(errors="replace")
    return buf
