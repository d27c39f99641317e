"""The documentation site: built offline from the sources, then opened in a real browser.

One build (about a minute on 2 cores) into a temporary folder, then headless Chromium (Debian's
package, driven over the DevTools protocol) loads every page: the notebook pages show the figures
stored in their notebooks, the report pages show their PNGs, no page links to a missing local
file or anchor, nothing is fetched from the network, no script fails. Two screenshots are left in
the build folder (the test prints where) for a person to look at.
Skipped only where there is neither chromium nor apt-get to install it (`make browser`).
The build and the browser are the `slow` set (`make test-slow`, run by CI after `make test`): about 75 CPU seconds,
the most of any file; how a notebook is turned into a page (nbdev directives, show_doc, links, figure titles) is
checked on small inputs in `make test`.
"""
import importlib, json, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:
    import build_docs, site_check
finally:
    sys.path.pop(0)

# A figure saved at about 100 dpi is readable at 40% of its pixels and no less: fig5 with ten panels in a row
# (5,829 px wide) was shown at 13%.
MIN_SCALE = 0.4
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")


def _chromium():
    exe = site_check.find_browser()
    if exe: return exe
    if not shutil.which("apt-get"):
        pytest.skip("neither chromium nor apt-get: the docs browser test needs Debian's chromium (make browser)")
    subprocess.run(["bash", str(ROOT / "tools" / "install_chromium.sh")], check=False)
    exe = site_check.find_browser()
    if not exe: pytest.fail("apt-get is there but chromium could not be installed: run `make browser` (needs root)")
    return exe


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    rc, warnings = build_docs.build(out=tmp / "html", src=tmp / "src", quiet=True)
    assert rc == 0, "sphinx-build failed"
    # a markdown link to a missing document is a warning and rendered without <a>: the browser can't see it
    assert not warnings, "the docs build warned:\n" + "\n".join(warnings)
    return tmp / "html"


@pytest.fixture(scope="module")
def browser():
    with site_check.Chromium(_chromium()) as b:
        yield b


@pytest.fixture(scope="module")
def pages(site, browser):
    "Every page of the site, checked in the browser: {path relative to the site: check_page's dict}."
    return {p.relative_to(site).as_posix(): site_check.check_page(browser, p) for p in site_check.site_pages(site)}


def _figures(nb_path: Path) -> int:
    "How many figures the site should show for a notebook: image outputs of the cells it keeps."
    nb = build_docs.doc_notebook(json.loads(nb_path.read_text()))
    return sum(any(m in o.get("data", {}) for m in IMAGE_MIMES)
               for c in nb["cells"] if c["cell_type"] == "code"
               and not {"remove-cell", "remove-output"} & set(c["metadata"].get("tags", []))
               for o in c.get("outputs", []))


@pytest.mark.slow
def test_every_notebook_module_and_report_has_a_page(site):
    for nb in build_docs.notebooks():
        assert (site / "nbs" / f"{nb.stem}.html").exists(), nb
    for m in build_docs.modules():
        assert (site / "api" / f"{m}.html").exists(), m
    for d in (ROOT / "reports").glob("*/"):
        assert (site / "reports" / d.name / "README.html").exists(), d
    assert "Score-based data pruning" in (site / "index.html").read_text()   # README is the landing page


@pytest.mark.slow
def test_api_pages_document_every_public_function_and_class(site):
    "autodoc only warns when a module fails to import: an empty API page would pass unnoticed."
    import inspect
    for m in build_docs.modules():
        mod = importlib.import_module(f"scoreextra.{m}")
        html = (site / "api" / f"{m}.html").read_text()
        documented = [n for n in getattr(mod, "__all__", []) if (inspect.isfunction(o := getattr(mod, n)) or inspect.isclass(o)) and o.__doc__]
        missing = [n for n in documented if f'id="scoreextra.{m}.{n}"' not in html]
        assert not missing, f"scoreextra.{m}: not on its API page: {missing}"
    # docments (trailing comments) become parameter fields, `**kw`'s comment included (fastcore gives it to the return)
    html = (site / "api" / "prune.html").read_text()
    assert "<strong>keep_frac</strong> – fraction kept" in html
    assert "<strong>strategy_kw</strong> – options of the strategy" in html and html.count("options of the strategy") == 1


@pytest.mark.slow
def test_notebook_pages_show_their_figures(pages):
    for nb in build_docs.notebooks():
        r = pages[f"nbs/{nb.stem}.html"]
        shown = [i for i in r["loaded_images"] if i["in_article"]]
        assert not r["broken_images"], f"{nb.name}: images that did not load: {r['broken_images']}"
        assert len(shown) >= _figures(nb), f"{nb.name}: {_figures(nb)} figures stored, {len(shown)} shown"


@pytest.mark.slow
def test_report_pages_show_their_figures(pages):
    for d in (ROOT / "reports").glob("*/"):
        n = len(list(d.glob("*.png")))
        r = pages[f"reports/{d.name}/README.html"]
        assert not r["broken_images"], f"{d.name}: {r['broken_images']}"
        assert len([i for i in r["loaded_images"] if i["in_article"]]) >= n, f"{d.name}: {n} PNGs, fewer shown"


@pytest.mark.slow
def test_no_page_links_to_a_missing_target_or_the_network(pages):
    bad = {p: {k: r[k] for k in ("broken_links", "broken_images", "network", "js_errors") if r[k]} for p, r in pages.items()}
    bad = {p: v for p, v in bad.items() if v}
    assert not bad, json.dumps(bad, indent=1)
    assert len(pages) >= len(build_docs.notebooks()) + len(build_docs.modules())


@pytest.mark.slow
def test_checker_sees_broken_images_links_and_network(tmp_path, browser):
    "The browser checks would pass vacuously if they could not see a broken page: show that they do."
    png = next((ROOT / "reports").rglob("*.png"))
    shutil.copy(png, tmp_path / "ok.png")
    (tmp_path / "ok.html").write_text('<html><body><p id="here">target</p></body></html>')
    (tmp_path / "bad.html").write_text(
        '<html><body><article><img src="ok.png"><img src="missing.png"><a href="ok.html#here">fine</a>'
        '<a href="nope.html">gone</a><a href="ok.html#nowhere">no anchor</a>'
        '<script src="https://example.invalid/x.js"></script></article></body></html>')
    r = site_check.check_page(browser, tmp_path / "bad.html")
    assert [Path(i["src"]).name for i in r["loaded_images"]] == ["ok.png"]
    assert [Path(s).name for s in r["broken_images"]] == ["missing.png"]
    assert len(r["broken_links"]) == 2 and any("nope.html" in l for l in r["broken_links"]) \
        and any("#nowhere" in l for l in r["broken_links"])
    assert r["network"] == ["https://example.invalid/x.js"]


@pytest.mark.slow
def test_screenshots_of_two_pages(site, browser, pages):
    "Left in the build folder for a person to look at (the path is printed with -s)."
    out = site.parent / "screenshots"
    out.mkdir(exist_ok=True)
    for pg in ("index.html", "reports/fashion_mnist/README.html"):
        if not (site / pg).exists(): continue
        browser.load((site / pg).as_uri()); browser.inspect()
        shot = browser.screenshot(out / (pg.replace("/", "_").removesuffix(".html") + ".png"))
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print("screenshots in", out)


def test_doc_notebook_applies_nbdev_directives():
    cell = lambda src, outs=(): {"cell_type": "code", "metadata": {}, "source": src, "outputs": list(outs), "execution_count": None}
    nb = {"cells": [cell("#| default_exp core"), cell("#| hide\nimport secret"), cell("#| export\ndef f(): pass"),
                    cell("#| echo: false\nprint(1)", [{"output_type": "stream", "name": "stdout", "text": "1\n"}]),
                    cell("#|hide\n"), {"cell_type": "markdown", "metadata": {}, "source": "# t"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    out = build_docs.doc_notebook(nb)
    code = [c for c in out["cells"] if c["cell_type"] == "code"]
    assert [(c["source"], c["metadata"]["tags"]) for c in code] == [
        ("import secret", ["remove-cell"]), ("def f(): pass", ["hide-input"]), ("print(1)", ["remove-input"])]
    assert code[1]["metadata"]["mystnb"]["code_prompt_show"] == "Show the source"     # the source a click away
    assert out["metadata"]["language_info"]["name"] == "python" and nb["cells"][1]["source"].startswith("#| hide")


def test_doc_notebook_renders_show_doc_folds_checks_and_links_names():
    "The nbdev way: `show_doc(x)` becomes x's rendered entry, a cell of checks folds, backticked names link."
    cell = lambda src, outs=(): {"cell_type": "code", "id": "c1", "metadata": {}, "source": src, "outputs": list(outs)}
    md = lambda src: {"cell_type": "markdown", "metadata": {}, "source": src}
    out = {"output_type": "stream", "name": "stdout", "text": "1\n"}
    nb = {"cells": [cell("#| default_exp core"), cell("show_doc(Registry.register)"), cell("show_doc(load_yaml)"),
                    cell("test_eq(1, 1)\nassert True"), cell("test_eq(1, 1)\nprint(1)", [out]),
                    md("`load_yaml` and `Registry.register()`, `core.load_yaml`, `nothing_here`, ``load_yaml``\n"
                       "```\n`load_yaml` in a fence\n```")],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    cells = build_docs.doc_notebook(nb, build_docs.api_names())["cells"]       # the default_exp cell goes
    assert cells[0]["source"] == "```{eval-rst}\n.. automethod:: scoreextra.core.Registry.register\n   :no-index:\n```"
    assert cells[1]["source"].startswith("```{eval-rst}\n.. autofunction:: scoreextra.core.load_yaml\n")
    assert cells[2]["metadata"]["tags"] == ["hide-input"] and cells[2]["metadata"]["mystnb"]["code_prompt_show"] == "Show the checks"
    assert cells[3]["metadata"]["tags"] == []            # a cell that prints is an example: shown
    assert cells[4]["source"] == ("{py:obj}`load_yaml <scoreextra.core.load_yaml>` and "
                                  "{py:obj}`Registry.register() <scoreextra.core.Registry.register>`, "
                                  "{py:obj}`core.load_yaml <scoreextra.core.load_yaml>`, `nothing_here`, ``load_yaml``\n"
                                  "```\n`load_yaml` in a fence\n```")
    # export cells in a row: one toggle opens their sources, in order
    nb = {"cells": [cell("#| export\ndef _a(): pass"), cell("#| export\ndef b(): pass"), cell("x = 1"),
                    cell("#| export\ndef c(): pass")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    cells = build_docs.doc_notebook(nb)["cells"]
    assert [c["source"] for c in cells] == ["def _a(): pass\n\ndef b(): pass", "x = 1", "def c(): pass"]
    assert [c["metadata"].get("mystnb", {}).get("code_prompt_show") for c in cells] == ["Show the source", None,
                                                                                          "Show the source"]
    # a name two modules define links to the page's own module, and stays text elsewhere
    names = {"load": {"scoreextra.a.load", "scoreextra.b.load"}}
    assert build_docs.link_names("`load`", names, "b") == "{py:obj}`load <scoreextra.b.load>`"
    assert build_docs.link_names("`load`", names, "c") == "`load`"


@pytest.mark.slow
def test_notebook_pages_render_api_entries_not_source(site):
    "No `show_doc(...)` input on any page; each becomes a signature entry; export cells are folded; names link."
    import re
    for nb in build_docs.notebooks():
        html, n = (site / "nbs" / f"{nb.stem}.html").read_text(), nb.read_text().count('"show_doc(')
        assert "show_doc" not in html, nb.name
        assert html.count('<dt class="sig sig-object py"') >= n, f"{nb.name}: {n} show_doc cells"
        sigs = "".join(re.findall(r'<dt class="sig sig-object py".*?</dt>', html, flags=re.S))
        assert "NoneType" not in sigs and "np.float64(" not in sigs, nb.name    # defaults as written
        kept = [c for c in json.loads(nb.read_text())["cells"] if "".join(c["source"]).strip() or c.get("outputs")]
        export = ["#| export" in "".join(c["source"]) for c in kept]
        runs = sum(e and not (i and export[i - 1]) for i, e in enumerate(export))    # cells in a row: one toggle
        assert html.count("Show the source") == runs, nb.name
    html = (site / "nbs" / "19_pipeline.html").read_text()
    assert re.search(r'<a class="reference internal" href="../api/pipeline.html#scoreextra.pipeline.run"', html)
    assert 'href="api/pipeline.html#scoreextra.pipeline.run"' in (site / "index.html").read_text()   # README too


@pytest.mark.slow
def test_pages_read_at_the_sites_width(pages):
    "Issue 28.6: what a reader sees: no code wider than the column, links on every page, figures not shrunk unreadably."
    wide = {p: [f"{w['width']}px > {w['column']}px: {w['line'][:90]}" for w in r["wide_code"]] for p, r in pages.items()}
    wide = {p: w for p, w in wide.items() if w}
    assert not wide, f"{sum(map(len, wide.values()))} code blocks scroll sideways:\n" + json.dumps(wide, indent=1)[:6000]
    unlinked = [p for p, r in pages.items() if not r["article_links"] and p not in ("search.html", "genindex.html")]
    assert not unlinked, f"pages without a link: {unlinked}"
    small = [(p, Path(i["src"]).name, i["shown"], i["natural"]) for p, r in pages.items() for i in r["loaded_images"]
             if i["in_article"] and i["shown"] < MIN_SCALE * i["natural"]]
    assert not small, f"figures shown at under {MIN_SCALE:.0%} of their size (too many panels in a row?): {small}"


def test_appended_figures_are_titled_in_words(tmp_path):
    "A report figure its README does not show is appended under a title in words, never its file name."
    for name in ("fig2_pruning_curves_steps.png", "fig7_break_even.png", "fig9_something_new.png"): (tmp_path / name).write_bytes(b"")
    (tmp_path / "README.md").write_text("# A report\n\n![shown](fig7_break_even.png)\n")
    heads = [l for l in build_docs.report_page(tmp_path).splitlines() if l.startswith("### ")]
    assert heads == ["### Fig. 2 — test accuracy against the prune rate (equal optimiser steps)", "### Fig9 something new"]
    for d in (ROOT / "reports").glob("*/"):   # the committed reports: every appended figure of theirs is a known one
        appended = build_docs.report_page(d).partition("\n## Figures\n")[2].partition("\n## ")[0]
        heads = [l for l in appended.splitlines() if l.startswith("### ")]
        assert all(h.startswith("### Fig. ") for h in heads), (d.name, heads)
