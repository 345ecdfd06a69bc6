"A checkpoint writer killed with SIGKILL mid-write never leaves a broken file where a good one was."
import os, signal, subprocess, sys, time, textwrap
from anitalker.core import load_checkpoint, atomic_save
import torch

WRITER = textwrap.dedent("""
    import sys, torch
    from anitalker.core import atomic_save
    path = sys.argv[1]; i = 0
    print("ready", flush=True)
    while True:
        i += 1
        atomic_save({"step": i, "w": torch.full((2_000_000,), float(i))}, path)   # 8 MB per write
""")

def test_sigkill_during_writes_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"step": 0, "w": torch.zeros(2_000_000)}, path)
    for delay in (0.05, 0.2, 0.5):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and p.poll() is None: pass       # busy-wait: let it write for `delay` s
        os.kill(p.pid, signal.SIGKILL); p.wait()
        ck = load_checkpoint(path)                                          # always a complete file
        assert torch.equal(ck["w"], torch.full((2_000_000,), float(ck["step"])))
