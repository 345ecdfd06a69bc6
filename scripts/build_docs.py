"""HTML pages from the notebooks, readable offline: `python scripts/build_docs.py [NOTEBOOK_OR_FOLDER ...] [OUT]`
(default: nbs _docs).

Each notebook is read, changed in memory only (the files are never written) and exported with nbconvert's
HTMLExporter (the `lab` template, with the notebooks' saved outputs: nothing is executed):

- nbdev directives are hidden: `#|` lines are removed from code cells; a cell whose directives include `hide` (or
  `include: false`) is dropped; a code cell left empty (e.g. `#| default_exp core` alone) is dropped.
- maths is rendered by MathJax 2 copied from the `jupyter-server-mathjax` package into OUT/mathjax/ and loaded by a
  relative URL; the template's CDN scripts (require.js, mermaid, the widget manager) are left out, so a page loads
  nothing from the internet. Images that markdown cells reference (e.g. images/x.png) are embedded in the page.

Pages keep the folders' layout (nbs/experiments/a.ipynb -> OUT/experiments/a.html). index.ipynb becomes index.html with
a list of every page added at its end (without index.ipynb, index.html is that list alone).
"""
import argparse, re, shutil, time
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

MATHJAX_DIR = "mathjax"   # under the output folder
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"   # config/*.js files the package ships
INSTALL = "pip install jupyter-server-mathjax==0.2.6 (make setup installs it)"

# the lab template without its CDN scripts; MathJax told to use the one web font the package ships (STIX-Web)
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{{ super() }}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}});
</script>
{%- endblock html_head_js_mathjax -%}
"""
DIRECTIVE = re.compile(r"^\s*#\|")


def mathjax_static() -> Path:
    "The MathJax 2 folder inside the jupyter_server_mathjax package; a clear error when it is not installed."
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise SystemExit(f"error: jupyter_server_mathjax is not installed: {INSTALL}") from None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise SystemExit(f"error: no MathJax.js in {static}: reinstall it: {INSTALL}")
    return static


def directives(source:str) -> list[str]:
    "The nbdev directives of a cell, e.g. ['export'], ['hide'], ['eval: false']."
    lines = [line for line in source.splitlines() if DIRECTIVE.match(line)]
    return [re.sub(r"\s+", " ", line.split("#|", 1)[1].strip()) for line in lines]


def hidden(cell) -> bool:
    return cell.cell_type == "code" and any(d == "hide" or d.replace(" ", "") == "include:false"
                                            for d in directives(cell.source))


def shown(nb):
    "A copy of `nb` as the page shows it: hidden cells dropped, directive lines stripped, empty code cells dropped."
    nb = nbformat.from_dict(nb)
    cells = []
    for cell in nb.cells:
        if hidden(cell): continue
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.splitlines() if not DIRECTIVE.match(line)).strip("\n")
            if not cell.source.strip() and not cell.get("outputs"): continue
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)   # widget state would pull the widget manager from a CDN
    return nb


def title(nb, default:str) -> str:
    "The notebook's first markdown `# heading`, else `default`."
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m: return m.group(1).strip()
    return default


def notebooks(inputs:list[Path]) -> list[tuple[Path, Path]]:
    "(notebook, its path relative to its input folder), sorted; checkpoints skipped."
    found = []
    for p in inputs:
        if p.is_dir():
            nbs = [nb for nb in sorted(p.rglob("*.ipynb")) if ".ipynb_checkpoints" not in nb.parts]
            found += [(nb, nb.relative_to(p)) for nb in nbs]
        elif p.suffix == ".ipynb" and p.is_file():
            found.append((p, Path(p.name)))
        else:
            raise SystemExit(f"error: {p} is neither a notebook nor a folder")
    return found


def page_list(pages:list[tuple[Path, str]], depth:int=0) -> str:
    "A markdown list of links to the pages (paths relative to the output folder)."
    up = "../" * depth
    return "## Pages\n\n" + "\n".join(f"- [{t}]({up}{p.as_posix()})" for p, t in pages)


def export(exporter:HTMLExporter, nb, src_dir:Path, name:str, depth:int) -> str:
    exporter.mathjax_url = "../" * depth + f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name, "path": str(src_dir)}})
    return html


def build(inputs, out) -> list[Path]:
    "Write a page per notebook of `inputs` (notebooks or folders), MathJax and index.html into `out`; the pages."
    static = mathjax_static()
    out = Path(out)
    found = notebooks([Path(p) for p in inputs])
    if not found: raise SystemExit(f"error: no notebooks in {' '.join(map(str, inputs))}")
    exporter = HTMLExporter(template_name="lab", raw_template=OFFLINE_TEMPLATE, embed_images=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(static, out / MATHJAX_DIR, dirs_exist_ok=True)
    loaded = [(src, rel, shown(nbformat.read(src, as_version=4))) for src, rel in found]
    pages = [(rel.with_suffix(".html"), title(nb, rel.stem)) for src, rel, nb in loaded if rel != Path("index.ipynb")]
    written, has_index = [], False
    for src, rel, nb in loaded:
        t0 = time.time()
        if rel == Path("index.ipynb"):
            nb.cells.append(nbformat.v4.new_markdown_cell(page_list(pages)))
            has_index = True
        dest = out / rel.with_suffix(".html")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(export(exporter, nb, src.parent, rel.stem, len(rel.parts) - 1), encoding="utf-8")
        written.append(dest)
        print(f"[docs] {src} -> {dest} ({time.time() - t0:.1f} s)", flush=True)
    if not has_index:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(page_list(pages))])
        nb.metadata["title"] = "Pages"
        dest = out / "index.html"
        dest.write_text(export(exporter, nb, out, "index", 0), encoding="utf-8")
        written.append(dest)
        print(f"[docs] list of pages -> {dest}", flush=True)
    return written


def main(argv=None):
    usage = "%(prog)s [NOTEBOOK_OR_FOLDER ...] [OUT]  (like cp: the last of two or more paths is OUT)"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage=usage)
    ap.add_argument("paths", nargs="*", help="notebooks or folders of notebooks, then the output folder (default: "
                                             "nbs _docs; a single path is an input, written to _docs)")
    paths = ap.parse_args(argv).paths
    inputs, out = (paths[:-1], paths[-1]) if len(paths) >= 2 else (paths or ["nbs"], "_docs")
    build(inputs, out)

if __name__ == "__main__":
    main()
