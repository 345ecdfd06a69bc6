"""The package's layout: dependencies point one way (core/nn/engine <- data/audio <- losses <- stage1 <- stage2 <- infer <-
metrics <- jobs/reports/bench/cli), no import cycles, inference needs nothing from the training modules, no method is
attached to a class by assignment."""
import ast, re
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/"anitalker"
RANK = {"core": 0, "nn": 1, "engine": 1, "data": 2, "audio": 2, "losses": 3, "stage1": 4, "stage2": 5, "infer": 6,
        "metrics": 7, "widgets": 8, "jobs": 8, "reports": 8, "bench": 8, "cli": 9, "__init__": 0, "_modidx": 0}

def modules() -> dict:
    "{dotted module name: path} of every module in the package."
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out

def imports_of(name:str, path:Path, top_only:bool=False) -> set:
    "anitalker modules that `name` imports (module level only, or anywhere, e.g. inside functions)."
    tree, pkg, found = ast.parse(path.read_text()), name if path.name == "__init__.py" else name.rsplit(".", 1)[0], set()
    nodes = tree.body if top_only else ast.walk(tree)
    for n in nodes:
        if isinstance(n, ast.Import): found |= {a.name for a in n.names if a.name.startswith("anitalker")}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                up = pkg.split("."); up = up[:len(up) - (n.level - 1)]
                base = ".".join(up + ([base] if base else []))
            if base.startswith("anitalker"): found |= {base} | {f"{base}.{a.name}" for a in n.names}
    mods = modules()
    return {m for m in found if m in mods and m != name}

def area(mod:str) -> str: return mod.split(".")[1] if "." in mod else "__init__"

MODS = modules()
GRAPH = {m: imports_of(m, p) for m, p in MODS.items()}

def test_every_area_has_a_rank():
    assert not (missing := {area(m) for m in MODS} - set(RANK)), f"areas without a place in the layout: {missing}"

@pytest.mark.parametrize("mod", sorted(MODS))
def test_no_upward_import(mod):
    up = [d for d in GRAPH[mod] if RANK[area(d)] > RANK[area(mod)]]
    assert not up, f"{mod} (rank {RANK[area(mod)]}) imports downstream module(s) {up}"

def test_no_import_cycles():
    seen, stack, cycles = set(), [], []
    def visit(m):
        if m in stack: cycles.append(stack[stack.index(m):] + [m]); return
        if m in seen: return
        seen.add(m); stack.append(m)
        for d in sorted(GRAPH[m]): visit(d)
        stack.pop()
    for m in sorted(GRAPH): visit(m)
    assert not cycles, f"import cycles: {cycles}"

def test_inference_and_bench_need_no_training_module_at_import():
    for mod in [m for m in MODS if area(m) in ("infer", "bench")]:
        train = [d for d in imports_of(mod, MODS[mod]) if d.endswith(".train") or area(d) == "engine"]
        if area(mod) == "bench": train = [d for d in imports_of(mod, MODS[mod], top_only=True) if d.endswith(".train")]
        assert not train, f"{mod} imports training code {train}"

def test_no_method_attached_by_assignment():
    "`Class.name = function` hides a method from grep and from the class body; use fastcore's @patch or define it inside."
    pat = re.compile(r"^[A-Z]\w*\.\w+(\s*,\s*[A-Z]\w*\.\w+)*\s*=\s*_?\w+", re.M)
    hits = [f"{p.relative_to(PKG)}: {m.group(0)}" for p in PKG.rglob("*.py") for m in pat.finditer(p.read_text())]
    assert not hits, hits

def test_the_checker_sees_a_planted_cycle_and_an_upward_import(tmp_path):
    "The checks above must be able to fail: parse a fake module that imports downstream."
    f = tmp_path/"x.py"; f.write_text("from ..infer.pipeline import generate\nfrom anitalker.cli import main\n")
    got = imports_of("anitalker.stage1.x", f)
    assert {"anitalker.infer.pipeline", "anitalker.cli"} <= got

def _code_lines():
    import json
    for nb in sorted((PKG.parent/"nbs").rglob("*.ipynb")):
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            if c["cell_type"] == "code":
                for n, line in enumerate("".join(c["source"]).split("\n"), 1): yield f"{nb.name} cell {i} line {n}", line

def test_code_lines_fit_in_120_characters():
    "The notebooks are the source of the library: every line of a code cell within 120 characters (as the anchors)."
    long = [f"{where} ({len(line)} characters)" for where, line in _code_lines() if len(line) > 120]
    assert not long, f"{len(long)} lines over 120 characters: {long[:10]}"

def test_export_cells_are_at_most_40_lines():
    "One idea per exported cell (nbdev's own notebooks, fastai): a longer class gets further methods in @patch cells."
    import json
    long = []
    for nb in sorted((PKG.parent/"nbs").rglob("*.ipynb")):
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            src = "".join(c["source"])
            if c["cell_type"] == "code" and src.startswith("#| export") and len(src.split("\n")) > 40:
                long.append(f"{nb.name} cell {i} ({len(src.splitlines())} lines)")
    assert not long, f"export cells over 40 lines: {long}"
