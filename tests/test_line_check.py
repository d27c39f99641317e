"""tools/line_check.py: the code a reader sees is at most 100 characters wide, and --fix keeps the code's meaning."""
import ast, json, sys
from pathlib import Path

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


def test_check_sees_shown_cells_and_fences_only(tmp_path):
    long = "x = " + " + ".join(["1"] * 60)
    cell = lambda src: {"cell_type": "code", "metadata": {}, "outputs": [], "source": src}
    nb = {"cells": [cell("#| export\n" + long), cell("#| hide\n" + long), cell(long),
                    {"cell_type": "markdown", "metadata": {}, "source": long},
                    {"cell_type": "markdown", "metadata": {}, "source": f"text\n```\n{long}\n```"}], "metadata": {}}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    assert [w for w, _ in line_check.long_lines(tmp_path / "n.ipynb")] == ["n.ipynb cell 2", "n.ipynb cell 4"]
    readme = tmp_path / "README.md"      # fences only: prose lines may be long (they wrap)
    readme.write_text(f"{long}\n\n```sh\nshort\n{long} --fenced\n```\n{long}\n")
    assert [l for _, l in line_check.long_lines(readme)] == [f"{long} --fenced"]
    assert line_check.fix(tmp_path / "n.ipynb") == 1
    cells = json.loads((tmp_path / "n.ipynb").read_text())["cells"]
    assert "".join(cells[0]["source"]) == "#| export\n" + long                 # export and hidden cells untouched
    assert [w for w, _ in line_check.long_lines(tmp_path / "n.ipynb")] == ["n.ipynb cell 4"]   # prose: by hand


def test_the_repository_passes_the_check():
    bad = [(w, len(l)) for f in line_check.default_files() for w, l in line_check.long_lines(f)]
    assert not bad, f"lines over 100 characters a reader sees (python tools/line_check.py --fix): {bad[:20]}"
