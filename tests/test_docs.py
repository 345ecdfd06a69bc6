"""The docs a person who cloned the repo reads: README.md has what it must, and nothing points at documents they cannot see.

Internal references are pointers to the kit's private working notes (issue numbers of its tracker, files under
`../shared/`, the design document, "the seed", "reference facts §N"). Anyone reading the repo should instead get what
they refer to, said plainly, or a public link (the paper, the official repository).

The section sign is allowed only to cite the AniTalker paper or its supplementary material: "paper §3.2",
"supplementary §2.2.1", "the paper's supplementary material, §3.1 and Fig. 2" (a list such as "§2.2.1 and §3.3"
counts as one citation). Issue numbers are allowed on a line that names a public repository (github.com or
X-LANCE/...), e.g. an issue of the official AniTalker repository.
"""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

INTERNAL = {
    "issue number": re.compile(r"\bissues?\s+#?\d+", re.I),
    "shared/ path": re.compile(r"(?<![\w-])shared/"),
    "design document": re.compile(r"\bdesign(?:\.md|\s+§)", re.I),
    "environment notes": re.compile(r"\benvironment\.md\b"),
    "the seed": re.compile(r"\bthe seed's\b|\bseed\s*§|\(seed,\s*(?:supplementary|paper|§)|\b(?:of|in|from) the seed\s*\(|"
                           r"\b(?:Fig\.|Figure|Table|order|steps)\s*\d*\s*of the seed\b", re.I),
    "reference facts": re.compile(r"\breference facts\b|\bfacts\s*§", re.I),
    "official_model_facts": re.compile(r"official_model_facts"),
}
PUBLIC_REPO = re.compile(r"github\.com|X-LANCE/", re.I)
SECTION_RUN = re.compile(r"§\s?\d+(?:\.\d+)*(?:\s*(?:,|and|or|to|–|-)\s*§\s?\d+(?:\.\d+)*)*")
CITABLE = re.compile(r"(?:\bpaper(?:'s)?|\bsupplementary(?: material)?|\bsupplement)\s*,?\s*$", re.I)


def internal_refs(text:str) -> list[str]:
    "Every internal reference in `text`, as 'line N: what: the line'."
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for what, pat in INTERNAL.items():
            if pat.search(line) and not (what == "issue number" and PUBLIC_REPO.search(line)):
                out.append(f"line {n}: {what}: {line.strip()[:160]}")
        runs = list(SECTION_RUN.finditer(line))
        covered = {i for m in runs for i in range(m.start(), m.end())}
        bad = [m for m in runs if not CITABLE.search(line[:m.start()])]
        stray = [i for i, ch in enumerate(line) if ch == "§" and i not in covered]
        if bad or stray: out.append(f"line {n}: § that does not cite the paper or its supplementary material: {line.strip()[:160]}")
    return out


def doc_texts():
    "(name, text) of README.md, every notebook cell's source and every library module."
    yield "README.md", (ROOT/"README.md").read_text()
    for nb in sorted((ROOT/"nbs").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts: continue
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            yield f"{nb.relative_to(ROOT)} cell {i}", "".join(c["source"])
    for py in sorted((ROOT/"anitalker").rglob("*.py")):
        yield str(py.relative_to(ROOT)), py.read_text()


def test_pattern_rules():
    bad = ["see issue 7", "issues 6 and 7", "`../shared/design.md`", "design §5", "the seed's pipeline", "seed §2.2.1",
           "Seed §3.1", "(seed, supplementary §1)", "Fig. 1 of the seed", "The steps of the seed (§1)", "reference facts §2",
           "facts §7", "official_model_facts.md", "(§3.3)", "what each factor is worth (§4)"]
    good = ["return the seed", "depending on the seed", "seeds 0 and 1", "(seed 1: 0.5)", "manual_seed(seed)", "from `(seed, id)`", "paper §3.2",
            "supplementary §2.2.1 and §3.3", "the paper's supplementary material, §3.1 and Fig. 2-3", "(supplementary §1)",
            "issue #12 of https://github.com/X-LANCE/AniTalker", "a shared trainer", "the issue is", "design choices"]
    for s in bad: assert internal_refs(s), f"not caught: {s!r}"
    for s in good: assert not internal_refs(s), f"false positive: {s!r}: {internal_refs(s)}"


def test_no_internal_references():
    found = [f"{name}, {r}" for name, text in doc_texts() for r in internal_refs(text)]
    assert not found, f"{len(found)} internal reference(s); say what they refer to, or link the paper / official repo:\n" + "\n".join(found)


def test_readme_has_what_a_new_user_needs():
    readme = (ROOT/"README.md").read_text()
    assert "https://arxiv.org/abs/2405.03121" in readme
    assert "https://github.com/X-LANCE/AniTalker" in readme
    assert "https://huggingface.co/taocode/anitalker_ckpts" in readme
    assert re.search(r"^\s*@\w+\{liu2024anitalker,", readme, re.M), "no BibTeX entry"
    assert "independent re-implementation" in readme
    for heading in ("Model card", "Ethics", "Two commands"):
        assert re.search(rf"^#+ {heading}\b", readme, re.M), f"no '{heading}' heading"
    assert readme.index("make quickstart") < readme.index("## What exists today")

def test_saved_notebooks_carry_no_widget_state():
    "Widget state (notebook metadata or widget-view outputs) is not saved: a page shows the widget's pictures or nothing."
    import json
    bad = [nb.name for nb in sorted((ROOT/"nbs").rglob("*.ipynb"))
           if "widgets" in (d := json.loads(nb.read_text())).get("metadata", {})
           or any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for c in d["cells"] for o in c.get("outputs", []))]
    assert not bad, f"notebooks saved with widget state: {bad}"
