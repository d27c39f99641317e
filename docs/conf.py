"""Sphinx configuration of the scoreextra documentation site.

`make docs` (tools/build_docs.py) lays out a source tree in _docs/src/ (README as the landing
page, the notebooks of nbs/ with their stored outputs, one API page per module, the committed
reports) and builds it with this configuration into _docs/html/. Nothing is executed and nothing
is fetched: notebooks are rendered as stored (nb_execution_mode = "off") and the theme ships its
assets, so the build works offline.
"""
import inspect, re, sys
from pathlib import Path

# document the package of this checkout, whatever scoreextra the environment has installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

project = "scoreextra"
author = "scoreextra developers"
copyright = "scoreextra developers"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["**/.ipynb_checkpoints"]

# Notebooks are shown with the outputs committed with them; the docs build never runs them
# (`make notebooks` does, and tests/test_notebooks.py checks that the outputs are current).
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "gfm"        # show_doc tables and pandas markdown in outputs
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3                 # links such as README.md#install resolve
suppress_warnings = ["myst.header"]      # notebooks jump heading levels (## after #) on purpose

# Docstrings here are markdown (nbdev renders them so): `x` is code, and a `|`, a lone `*` or a
# trailing `_` is plain text, not reStructuredText markup.
default_role = "code"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# api/<module>.md asks for members; a notebook page renders one name (its `show_doc`) without them
autodoc_default_options = {}
autodoc_preserve_defaults = True         # defaults as written in the source: `1e-4`, `DEFAULT_K`, not their values

html_theme = "furo"
html_title = "scoreextra"
html_show_sourcelink = False
html_copy_source = False
html_static_path = ["_static"]
html_css_files = ["site.css"]            # a column that fits 100 characters of code


_CODE = re.compile(r"(``.*?``|`[^`]*`)")
_EMPH = re.compile(r"\*\*[^*\s][^*]*?\*\*|\*[^*\s][^*]*?\*")


def _md_text(line: str) -> str:
    "Escape the characters reStructuredText would read as markup in a markdown docstring line."
    parts = _CODE.split(line)
    for i in range(0, len(parts), 2):            # even parts are outside `code` spans
        t = parts[i].replace("\\", "\\\\").replace("|", "\\|")
        keep = _EMPH.findall(t)
        t = _EMPH.sub("\0", t).replace("*", "\\*")
        for k in keep: t = t.replace("\0", k, 1)
        parts[i] = re.sub(r"(\w)_(?=\W|$)", r"\1\\_", t)
    return "".join(parts)


def _markdown_docstring(app, what, name, obj, options, lines):
    # nbdev ends a module docstring with "Docs: <its page on the nbdev site>": that page is this one
    lines[:] = [_md_text(l) for l in lines if not (what == "module" and l.startswith("Docs: http"))]


def _star_args_docments(obj, docs):
    "fastcore gives the comment after `*args,`/`**kw,` to the return value: give it back to the parameter."
    try:
        src = inspect.getsource(obj.__init__ if inspect.isclass(obj) else obj)
        star = [p for p in inspect.signature(obj).parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError, OSError): return
    for p in star:
        m = re.search(r"\*{1,2}" + p.name + r"\b[^#\n]*#\s*(.+)", src)
        if m and p.name in docs:
            text = m.group(1).strip()
            docs[p.name]["docment"] = text
            if (docs.get("return") or {}).get("docment") == text: docs["return"]["docment"] = None


def _docments_fields(app, what, name, obj, options, lines):
    """Add nbdev docments (parameter docs written as trailing comments) as `:param:` fields.

    autodoc reads docstrings only; scoreextra documents parameters the nbdev way, so without
    this the API pages would show signatures with no parameter descriptions."""
    if what not in ("function", "method", "class") or any(l.lstrip().startswith(":param") for l in lines): return
    try:
        from fastcore.docments import docments
        docs = docments(obj, full=True)
    except Exception: return        # builtins, C extensions, objects without source
    _star_args_docments(obj, docs)
    fields = []
    for p, d in docs.items():
        if p in ("self", "cls") or not d or not d.get("docment"): continue
        text = _md_text(" ".join(d["docment"].split()))
        fields.append(f":returns: {text}" if p == "return" else f":param {p}: {text}")
    if fields:
        if lines and lines[-1].strip(): lines.append("")
        lines.extend(fields)


def _eval_rst_unpadded(self, token):
    """myst-parser parses an eval-rst block after one blank line per line above it, so that rst's line
    numbers match the page; in a notebook the cells sit 10,000 lines apart, and the 230 rendered API
    entries of the notebook pages (one eval-rst block each) made docutils step through 55 million
    blank lines (175 CPU s for the site instead of 75). Parse the block alone; a warning in it names
    the page, not the line."""
    from myst_parser.mdit_to_docutils.base import make_document
    from myst_parser.mocking import MockRSTParser
    newdoc = make_document()
    newdoc["source"], newdoc.settings, newdoc.reporter = self.document["source"], self.document.settings, self.reporter
    MockRSTParser().parse(token.content, newdoc)
    for node in newdoc:
        if node["names"]: self.document.note_explicit_target(node, node)
    self.current_node.extend(newdoc.children)


def setup(app):
    from myst_parser.mdit_to_docutils.base import DocutilsRenderer
    DocutilsRenderer.render_restructuredtext = _eval_rst_unpadded
    app.connect("autodoc-process-docstring", _markdown_docstring)
    app.connect("autodoc-process-docstring", _docments_fields)
