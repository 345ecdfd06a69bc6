"""`make docs` (scripts/build_docs.py): pages without nbdev directives or hidden cells, maths by a local MathJax,
nothing fetched from the internet, and the notebooks left as they were."""
import hashlib, html, importlib.util, re, sys
from html.parser import HTMLParser
from pathlib import Path
import nbformat as nbf
import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_NB = ROOT / "nbs" / "00_core.ipynb"   # small, converted with its saved outputs (the build executes nothing)


def load_script():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Refs(HTMLParser):
    "What a browser would fetch: <script src>, <link href>, <img src>, <iframe src>, <source src>."
    def __init__(self):
        super().__init__()
        self.scripts, self.fetched = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"): self.scripts.append(a["src"])
        url = a.get("href") if tag == "link" else a.get("src") if tag in ("script", "img", "iframe", "source") else None
        if url: self.fetched.append(url)


def refs(page:str) -> Refs:
    r = Refs()
    r.feed(page)
    return r


def text(page:str) -> str:
    "The page without its tags (highlighted code split into spans reads as code again)."
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def digest(p:Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def notebooks(tmp_path):
    "Two small notebooks in tmp_path/nbs (one with directives and maths, one plain in a subfolder) and the real one."
    src = tmp_path / "nbs"
    (src / "sub").mkdir(parents=True)
    nbf.write(nbf.v4.new_notebook(cells=[
        nbf.v4.new_code_cell("#| default_exp demo"),
        nbf.v4.new_markdown_cell("# Demo page\n\n> directives and maths\n\nInline $x^2$ and display $$\\alpha$$."),
        nbf.v4.new_code_cell("#| export\ndef exported_fn(x): return x + 1"),
        nbf.v4.new_code_cell("#| hide\nHIDDEN_CELL_TOKEN = 42"),
        nbf.v4.new_code_cell("#|hide\nALSO_HIDDEN_TOKEN = 43"),
        nbf.v4.new_code_cell("#| eval: false\nshown_not_run = 1"),
    ]), src / "demo.ipynb")
    nbf.write(nbf.v4.new_notebook(cells=[nbf.v4.new_markdown_cell("# Plain page"),
                                         nbf.v4.new_code_cell("plain_value = 3")]), src / "sub" / "plain.ipynb")
    return src, [src / "demo.ipynb", src / "sub" / "plain.ipynb", REAL_NB]


def test_build(notebooks, tmp_path, capsys):
    src, inputs = notebooks
    before = {p: digest(p) for p in inputs}
    out = tmp_path / "docs"
    load_script().main([str(src), str(REAL_NB), str(out)])
    assert {p: digest(p) for p in inputs} == before, "the build changed an input notebook"

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("[docs] ") for line in lines), lines   # 3 notebooks, the index
    pages = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*.html") if "mathjax" not in p.parts}
    assert set(pages) == {"demo.html", "sub/plain.html", "00_core.html", "index.html"}

    for name, page in pages.items():
        assert "#|" not in page and "#|" not in text(page), name
        r = refs(page)
        external = [u for u in r.fetched if re.match(r"(https?:)?//", u)]
        assert not external, f"{name} fetches {external}"
        assert not re.search(r"url\(\s*['\"]?(https?:)?//|import\(\s*['\"](https?:)?//", page), name
        mathjax = [s for s in r.scripts if "MathJax.js" in s]
        assert len(mathjax) == 1, (name, r.scripts)
        path, _, query = mathjax[0].partition("?")
        assert not re.match(r"[a-z]+:|/", path), f"{name}: MathJax is not loaded by a relative path: {path}"
        assert (out / Path(name).parent / path).resolve() == (out / "mathjax" / "MathJax.js").resolve()
        assert (out / "mathjax" / "MathJax.js").is_file()
        configs = re.fullmatch(r"config=([\w,-]+)", query).group(1).split(",")
        assert all((out / "mathjax" / "config" / f"{c}.js").is_file() for c in configs), configs

    demo = text(pages["demo.html"])
    assert "def exported_fn(x): return x + 1" in demo
    assert "shown_not_run = 1" in demo
    assert "HIDDEN_CELL_TOKEN" not in demo and "ALSO_HIDDEN_TOKEN" not in demo
    assert "default_exp" not in demo
    assert "$x^2$" in demo and "$$\\alpha$$" in demo   # left for MathJax to typeset
    assert "plain_value = 3" in text(pages["sub/plain.html"])
    assert "def " in text(pages["00_core.html"])
    index = pages["index.html"]
    for link in ("demo.html", "sub/plain.html", "00_core.html"):
        assert f'href="{link}"' in index, link


def test_missing_mathjax(monkeypatch, tmp_path, notebooks):
    monkeypatch.setitem(sys.modules, "jupyter_server_mathjax", None)   # `import jupyter_server_mathjax` fails
    with pytest.raises(SystemExit, match=r"pip install jupyter-server-mathjax==0\.2\.6 \(make setup installs it\)"):
        load_script().build([notebooks[0]], tmp_path / "docs")
    assert not (tmp_path / "docs").exists()
