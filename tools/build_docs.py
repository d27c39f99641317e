"""Build the documentation site offline: `python tools/build_docs.py` (what `make docs` runs).

Lays out a Sphinx source tree in _docs/src/ that mirrors the repository, so that relative links
written in README.md and the reports resolve as they do on a code host:

- index.md: README.md (generated from nbs/index.ipynb), the landing page, with the site's tables
  of contents appended;
- nbs/NN_name.ipynb: every notebook with its stored outputs, shown the nbdev way on the copy: an
  export cell's source folded behind "Show the source", each `show_doc(name)` cell replaced by
  the rendered entry (signature, docstring, parameter table), a cell of checks only folded behind
  "Show the checks", backticked public names linked to their API entry, nbdev directives turned
  into the renderer's tags (`#| hide` cells removed); the notebook in nbs/ is never touched or executed;
- api/<module>.md: autodoc of every scoreextra module (docstrings + docments, see docs/conf.py),
  with a link to the lesson that builds it;
- reports/<name>/README.md: each committed report with its tables, figures and CSV downloads
  appended (those its README does not already show), and report.ipynb as a sub-page; the
  sub-pages link back to the report.

then runs sphinx-build with docs/conf.py into _docs/html/ (open _docs/html/index.html); _docs/ is
git-ignored.
Usage: python tools/build_docs.py [--out DIR] [--quiet]
"""
import argparse, ast, inspect, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import DIRECTIVE, _source, directives   # nbdev's `#| name: value` cell directives
sys.path.pop(0)
DOCS = ROOT / "_docs"                     # git-ignored; myst-nb also writes _docs/jupyter_execute/
SRC, OUT = DOCS / "src", DOCS / "html"


def notebooks(root=ROOT):
    "The tutorial notebooks in reading order; index.ipynb is the landing page (README.md)."
    return sorted(p for p in (root / "nbs").glob("*.ipynb") if p.name != "index.ipynb")


def modules(root=ROOT):
    "The package's public modules (nbdev-generated), by name."
    return sorted(p.stem for p in (root / "scoreextra").glob("*.py") if not p.stem.startswith("_"))


def default_exp(nb: dict) -> str | None:
    "The module a notebook exports to (its `#| default_exp`), or None."
    return next((m for c in nb["cells"] if c["cell_type"] == "code"
                 and (m := directives(_source(c)).get("default_exp"))), None)


def api_names(root=ROOT) -> dict:
    """Every public name of the package by how a page writes it (`run`, `Registry.register`, `knn.merge`)
    → the set of full dotted paths it may mean, from nbdev's symbol index (scoreextra/_modidx.py)."""
    tree = ast.parse((root / "scoreextra" / "_modidx.py").read_text())
    syms = ast.literal_eval(tree.body[0].value)["syms"]
    names = {}
    for mod, entries in syms.items():
        for full in entries:
            rest = full[len(mod) + 1:]
            if any(part.startswith("_") for part in rest.split(".")): continue
            for short in (rest, f"{mod.split('.')[-1]}.{rest}", full):
                names.setdefault(short, set()).add(full)
    return names


INLINE_CODE = re.compile(r"(?<![`{])`([A-Za-z_][\w.]*)(\(\))?`(?!`)")
FENCE = re.compile(r"^\s*(```|~~~)")


def link_names(md: str, names: dict, module: str | None = None) -> str:
    """Markdown with every backticked public name (`run`, `select()`, `RunFolder.save`) made a link to
    its API entry (a MyST `py:obj` role); a name two modules define links to `module`'s, else stays text.
    Code fences are left alone."""
    def sub(m):
        name, call = m.group(1), m.group(2) or ""
        key = name.removeprefix("scoreextra.")
        full = names.get(key, set())
        if len(full) > 1 and module: full = {f for f in full if f.startswith(f"scoreextra.{module}.")}
        if len(full) != 1: return m.group(0)
        return f"{{py:obj}}`{name}{call} <{next(iter(full))}>`"
    out, fence = [], False
    for line in md.splitlines(keepends=True):
        if FENCE.match(line): fence = not fence
        out.append(line if fence else INLINE_CODE.sub(sub, line))
    return "".join(out)


TESTS = {"test_eq", "test_ne", "test_close", "test_fail", "test_is", "test_eq_type", "test_warns", "test_stdout",
         "test_shuffled", "test_sig", "test"}


def only_checks(code: str) -> bool:
    "Whether a cell is a battery of checks (`test_eq`, `test_fail`, `assert`, ...) and nothing else."
    try: body = ast.parse(code).body
    except SyntaxError: return False
    is_test = lambda s: (isinstance(s, ast.Assert) or isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                         and isinstance(s.value.func, ast.Name) and s.value.func.id in TESTS)
    return bool(body) and all(is_test(s) for s in body)


SHOW_DOC = re.compile(r"^show_doc\(\s*([A-Za-z_][\w.]*)\s*\)\s*$")


def _autodoc(target: str, module: str | None) -> str | None:
    """The autodoc directive that renders `target` (a name as a `show_doc` call writes it) the nbdev
    way: signature, docstring, parameter table. Not indexed: the API page holds the entry links go to."""
    import importlib
    mod = importlib.import_module(f"scoreextra.{module}") if module else None
    obj, parent = mod, None
    for part in target.split("."):
        parent, obj = obj, getattr(obj, part, None)
    if obj is None: return None
    where = getattr(obj, "__module__", None) or module
    owner = f"{parent.__qualname__}." if inspect.isclass(parent) else ""
    full = f"{where}.{owner}{getattr(obj, '__name__', target.split('.')[-1])}"
    kind = ("autoclass" if inspect.isclass(obj) else "automethod" if inspect.isclass(parent)
            else "autofunction" if callable(obj) else "autodata")
    return f"```{{eval-rst}}\n.. {kind}:: {full}\n   :no-index:\n```"


def _collapse(cell, tags, what):
    "Show a cell's input folded behind a 'Show <what>' toggle (myst-nb's hide-input)."
    tags.add("hide-input")
    cell["metadata"]["mystnb"] = {"code_prompt_show": f"Show {what}", "code_prompt_hide": f"Hide {what}"}


def doc_notebook(nb: dict, names: dict | None = None) -> dict:
    """A copy of `nb` as the site shows it, the nbdev way: an export cell's source collapsed (a click
    opens it), each `show_doc(name)` replaced by the rendered signature, docstring and parameter
    table, backticked public names linked to their API entry (`names`, from `api_names`); nbdev
    directives become myst-nb tags and directive lines go."""
    nb = json.loads(json.dumps(nb))
    module = default_exp(nb)
    cells = []
    for c in nb["cells"]:
        src = _source(c)
        if c["cell_type"] == "markdown":
            if names: c["source"] = link_names(src, names, module)
            cells.append(c); continue
        if c["cell_type"] != "code": cells.append(c); continue
        d = directives(src)
        tags = set(c.setdefault("metadata", {}).get("tags", []))
        if "hide" in d or "default_exp" in d: tags.add("remove-cell")
        if d.get("echo") == "false": tags.add("remove-input")
        if d.get("output") == "false": tags.add("remove-output")
        code = "\n".join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip("\n")
        if "export" in d or "exports" in d: _collapse(c, tags, "the source")
        elif not c.get("outputs") and only_checks(code): _collapse(c, tags, "the checks")
        if not code and not c.get("outputs"): continue
        if (m := SHOW_DOC.match(code)) and "remove-cell" not in tags and (md := _autodoc(m.group(1), module)):
            cells.append({"cell_type": "markdown", "id": c.get("id"), "metadata": {}, "source": md}); continue
        c["source"], c["metadata"]["tags"] = code, sorted(tags)
        for o in c.get("outputs", []):
            if "text/markdown" in o.get("data", {}): o["data"]["text/markdown"] = _site_markdown(o["data"]["text/markdown"])
        cells.append(c)
    nb["cells"] = _join_sources(cells)
    # nbdev-clean drops language_info; the renderer needs it to highlight the code cells
    nb["metadata"].setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return nb


def _join_sources(cells):
    """Export cells in a row behind one "Show the source" toggle: the notebook keeps one idea per cell
    (a private helper, then the function that uses it), the page opens their source with one click."""
    out = []
    source = lambda c: (c["cell_type"] == "code" and not c.get("outputs")
                        and c["metadata"].get("mystnb", {}).get("code_prompt_show") == "Show the source")
    for c in cells:
        if out and source(c) and source(out[-1]): out[-1]["source"] += "\n\n" + c["source"]
        else: out.append(c)
    return out


SHOW_DOC_SOURCE = re.compile(r"^\[source\]\([^)]*\)\{[^}]*\}\s*$")


def _site_markdown(md) -> str:
    """A markdown output as the site renders it. `show_doc` (nbdev) opens with a `---` rule, which
    docutils refuses inside an output (a transition must be a child of a section), and a `[source](…){…}`
    link in Quarto's attribute syntax (its line number is unknown outside Quarto: `#LNone`); both go."""
    lines = ("".join(md) if isinstance(md, list) else md).splitlines()
    while lines and (not lines[0].strip() or lines[0].strip() == "---" or SHOW_DOC_SOURCE.match(lines[0].strip())):
        lines.pop(0)
    return "\n".join(lines)


def _demote(md: str, by: int = 2) -> str:
    "Markdown with every ATX heading `by` levels deeper (outside code fences)."
    out, fence = [], False
    for line in md.splitlines():
        if line.lstrip().startswith("```"): fence = not fence
        if not fence and re.match(r"#{1,6} ", line): line = "#" * by + line
        out.append(line)
    return "\n".join(out)


def _title(name: str) -> str:
    t = name.replace("_", " ").replace("fashion mnist", "Fashion-MNIST")
    return t[:1].upper() + t[1:]


FIGURE_TITLES = {   # the figures `reporting.report` and the report scripts write, titled in words where the site appends them
    "fig1_gain_over_random": "Fig. 1 — gain over random pruning against the prune rate",
    "fig2_pruning_curves": "Fig. 2 — test accuracy against the prune rate",
    "fig3_time_vs_accuracy": "Fig. 3 — test accuracy against all seconds spent",
    "fig4_correlation_vs_accuracy": "Fig. 4 — test accuracy against the scores' correlation with the ground truth",
    "fig5_score_distributions": "Fig. 5 — distributions of the ground-truth and the extrapolated scores",
    "fig6_pruning_curves_smaller_subsets": "Fig. 6 — test accuracy against the prune rate, smaller subsets",
    "fig7_break_even": "Fig. 7 — accuracy against total compute, one-off scoring included",
}
BUDGET_WORDS = {"steps": "equal optimiser steps"}   # the suffix `report` gives a figure of a budget other than epochs


def figure_title(stem: str) -> str:
    "A figure file's title in words: 'fig2_pruning_curves_steps' -> 'Fig. 2 — test accuracy against the prune rate (equal optimiser steps)'."
    base = next((k for k in sorted(FIGURE_TITLES, key=len, reverse=True) if stem == k or stem.startswith(k + "_")), None)
    if base is None: return _title(stem)
    rest = stem[len(base) + 1:]
    return FIGURE_TITLES[base] + (f" ({BUDGET_WORDS.get(rest, rest.replace('_', ' '))})" if rest else "")


def report_page(folder: Path) -> str:
    """The page of one report: its README (or a title) and what the README does not show yet:
    the figures (*.png), the tables (*.md) inline, the CSV files as downloads, report.ipynb."""
    readme = folder / "README.md"
    text = readme.read_text() if readme.exists() else f"# Report: {_title(folder.name)}\n"
    parts = [text.rstrip("\n")]
    shown = lambda p: f"]({p.name}" in text or f"](./{p.name}" in text   # linked or embedded already
    tables = sorted(p for p in folder.glob("*.md") if p.name != "README.md")
    figures = sorted(p for p in folder.glob("*.png") if not shown(p))
    csvs = sorted(p for p in folder.glob("*.csv") if not shown(p))
    if figures:
        parts.append("## Figures")
        for f in figures: parts.append(f"### {figure_title(f.stem)}\n\n![{figure_title(f.stem)}]({f.name})")
    if any(not shown(t) for t in tables):
        parts.append("## Tables")
        for t in (t for t in tables if not shown(t)): parts.append(_demote(t.read_text().strip("\n")) + f"\n\n(from [{t.name}]({t.name}))")
    if csvs:
        parts.append("## Data\n\n" + "\n".join(f"- [{c.name}]({c.name})" for c in csvs))
    subpages = [p.stem for p in sorted(folder.glob("*.ipynb"))] + [t.stem for t in tables]
    if subpages:
        parts.append("```{toctree}\n:hidden:\n\n" + "\n".join(subpages) + "\n```")
    return "\n\n".join(parts) + "\n"


def _lessons(nbs) -> dict:
    "module name → the notebook that exports it."
    return {m: p for p in nbs if (m := default_exp(json.loads(p.read_text())))}


def _link_back(folder: Path):
    "A report's sub-pages (its tables, report.ipynb) open with a link back to the report they belong to."
    back = "Part of the report [{}](README.md)."
    title = _title(folder.name)
    for t in folder.glob("*.md"):
        if t.name != "README.md": t.write_text(t.read_text().rstrip("\n") + "\n\n" + back.format(title) + "\n")
    for p in folder.glob("*.ipynb"):
        nb = json.loads(p.read_text())
        nb["cells"].insert(0, {"cell_type": "markdown", "id": "backlink", "metadata": {},
                               "source": back.format(title) + " This notebook makes its tables and figures."})
        p.write_text(json.dumps(nb, indent=1))


def _toctree(caption: str, entries) -> str:
    "A toctree for the sidebar only: hidden, so the landing page does not repeat the sidebar as a bullet list."
    return f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n:hidden:\n\n" + "\n".join(entries) + "\n```\n"


def stage(src: Path = SRC, root: Path = ROOT) -> dict:
    "Lay out the Sphinx source tree in `src`; returns what it holds (for tests)."
    if src.exists(): shutil.rmtree(src)
    (src / "nbs").mkdir(parents=True)
    nbs, names = notebooks(root), api_names(root)
    for p in nbs:
        (src / "nbs" / p.name).write_text(json.dumps(doc_notebook(json.loads(p.read_text()), names), indent=1))
    (src / "api").mkdir()
    mods, lesson = modules(root), _lessons(nbs)
    for m in mods:
        see = f"The lesson that builds it: [{lesson[m].stem}](../nbs/{lesson[m].name}).\n\n" if m in lesson else ""
        (src / "api" / f"{m}.md").write_text(f"# scoreextra.{m}\n\n{see}```{{eval-rst}}\n"
                                             f".. automodule:: scoreextra.{m}\n   :members:\n   :show-inheritance:\n```\n")
    reports = sorted(d for d in (root / "reports").glob("*") if d.is_dir()) if (root / "reports").exists() else []
    for d in reports:
        shutil.copytree(d, src / "reports" / d.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        (src / "reports" / d.name / "README.md").write_text(report_page(d))
        _link_back(src / "reports" / d.name)
    index = link_names((root / "README.md").read_text(), names).rstrip("\n") + "\n\n"
    index += _toctree("Tutorial (the notebooks)", [f"nbs/{p.stem}" for p in nbs])
    index += _toctree("API reference", [f"api/{m}" for m in mods])
    if reports: index += _toctree("Reports", [f"reports/{d.name}/README" for d in reports])
    (src / "index.md").write_text(index)
    return {"notebooks": [p.stem for p in nbs], "modules": mods, "reports": [d.name for d in reports]}


def build(out: Path = OUT, src: Path = SRC, quiet: bool = False):
    """Stage and build the site; returns (sphinx's exit code, its warnings as lines).
    `quiet` keeps Sphinx's progress off the terminal (warnings are returned either way)."""
    info = stage(src)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "docs"), "-j", "1",
           "--keep-going", "-q", str(src), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    warnings = [l for l in r.stderr.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", l)]
    if not quiet:
        sys.stdout.write(r.stdout)
        # faiss logs its loader's fallbacks at INFO when autodoc imports scoreextra.knn: not ours to show
        sys.stderr.writelines(l + "\n" for l in r.stderr.splitlines() if l.strip() and "faiss" not in l)
        if r.returncode == 0:
            print(f"built {len(info['notebooks'])} notebook pages, {len(info['modules'])} API pages and "
                  f"{len(info['reports'])} report pages into {out}/index.html, {len(warnings)} warnings")
    return r.returncode, warnings


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    rc, _ = build(a.out.resolve(), quiet=a.quiet)
    sys.exit(rc)
