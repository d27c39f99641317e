"""tools/line_check.py: the code a reader sees is at most 100 characters wide, and --fix keeps the code's meaning."""
import ast, importlib, inspect, json, re, sys
from pathlib import Path

from fastcore.docments import docments

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:
    import line_check
finally:
    sys.path.pop(0)

LONG = [
    # a call with a trailing comment
    'res = run("digits", "du", seed_size=0.2, extrapolators=[("knn", 10)], prune_rates=[0.5], score_epochs=12)'
    '   # the short run',
    # a continuation line inside an open bracket, then a long f-string inside a call
    'x = dict(a=1,\n         bbbbbbbbbbbbbbbbbbbb=[1, 2, 3], cccccccccccccccccccccc={"k": "v"}, ddddddddddddddddddddddd=(4, 5),'
    ' e=6)\nprint(f"the first part of a message {x[\'a\']:.3f} and the second part that goes on {len(x)} and on beyond")',
    # a test battery line and a long comment line
    'def f():\n    # ' + "a comment that explains a lot " * 5 + '\n    test_fail(lambda: check("value", 1.5), contains="value must be a fraction in (0, 1) or an int count >= 1")',
]


def test_fix_brings_every_line_within_100_and_keeps_the_code():
    for code in LONG:
        out = line_check.wrap(code)
        assert max(map(len, code.splitlines())) > 100
        assert max(map(len, out.splitlines())) <= 100, out
        assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(code)), out       # comments aside, the same program
    short = 'x = [1, 2]   # short\ny = "a"'
    assert line_check.wrap(short) == short                                      # lines within the limit are kept


def test_check_sees_every_code_cell_the_package_and_fences(tmp_path):
    long = "x = " + " + ".join(["1"] * 60)
    cell = lambda src: {"cell_type": "code", "metadata": {}, "outputs": [], "source": src}
    nb = {"cells": [cell("#| export\n" + long), cell("#| hide\n" + long), cell(long),
                    {"cell_type": "markdown", "metadata": {}, "source": long},
                    {"cell_type": "markdown", "metadata": {}, "source": f"text\n```\n{long}\n```"}], "metadata": {}}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    where = [w for w, _ in line_check.long_lines(tmp_path / "n.ipynb")]
    assert where == ["n.ipynb cell 0", "n.ipynb cell 1", "n.ipynb cell 2", "n.ipynb cell 4"]   # the package too
    readme = tmp_path / "README.md"      # fences only: prose lines may be long (they wrap)
    readme.write_text(f"{long}\n\n```sh\nshort\n{long} --fenced\n```\n{long}\n")
    assert [l for _, l in line_check.long_lines(readme)] == [f"{long} --fenced"]
    assert line_check.fix(tmp_path / "n.ipynb") == 3
    assert [w for w, _ in line_check.long_lines(tmp_path / "n.ipynb")] == ["n.ipynb cell 4"]   # prose: by hand
    cells = json.loads((tmp_path / "n.ipynb").read_text())["cells"]
    assert "".join(cells[0]["source"]).startswith("#| export\nx = ")                # directives kept


def _module(tmp_path, name, code):
    (tmp_path / f"{name}.py").write_text(code + "\n")
    sys.path.insert(0, str(tmp_path))
    try: return importlib.import_module(name)
    finally: sys.path.pop(0)


def test_fix_keeps_docstrings_docments_noqa_and_one_line_suites(tmp_path):
    words = "a docstring that says a great deal about what this function does and why it is here at all"
    code = (f'def f(a, # the first parameter, which has a long comment that pushes the def line over the limit\n'
            f'      b:int=1, # {words}\n'
            f'     ) -> int:\n'
            f'    "{words}, twice: {words}"\n'
            f'    for k, v in dict(aaaaaaaaaaaaaaa=1, bbbbbbbbbbbbbbbbbb=2, ccccccccccccccccccccc=3).items(): x = k; y = v\n'
            f'    return len({{k: v for k, v in dict(aaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=2).items()}})\n'
            f'from json import dumps, loads, JSONDecoder, JSONEncoder, JSONDecodeError, detect_encoding  # noqa: F401\n')
    out = line_check.wrap(code)
    assert max(map(len, out.splitlines())) <= 100, out
    norm = lambda t: [" ".join(inspect.cleandoc(n.value).split()) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                      else ast.dump(n) for n in ast.walk(t) if not isinstance(n, (ast.Module, ast.FunctionDef, ast.Expr))]
    assert norm(ast.parse(out)) == norm(ast.parse(code))           # same program; docstring words the same
    assert "for k, v in" in out and "    y = v" not in out.replace("        y = v", "")   # `x = k; y = v` stays the loop's body
    assert re.search(r"^from json import \(.*# noqa: F401$", out, re.M)                   # noqa on the first line
    old, new = _module(tmp_path, "lc_old", code), _module(tmp_path, "lc_new", out)
    assert docments(new.f) == docments(old.f) and inspect.getdoc(new.f).split() == inspect.getdoc(old.f).split()
    assert docments(new.f)["a"].startswith("the first parameter")


def test_the_repository_passes_the_check():
    bad = [(w, len(l)) for f in line_check.default_files() for w, l in line_check.long_lines(f)]
    assert not bad, f"lines over 100 characters a reader sees (python tools/line_check.py --fix): {bad[:20]}"
