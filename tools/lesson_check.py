"""Do the notebooks read as lessons? (issue 28, item 5) For every notebook: each export cell that defines a public
function or class must be followed, before the next export cell, by a visible example (a code cell that is neither
`#| hide` nor only a `show_doc(...)`); visible cells should not be test batteries (at most `MAX_CHECKS` check lines;
the rest go to a `#| hide` cell after them). Prints what is missing; exits 1 when an example is missing or a
battery is visible. `make test` runs it.

    python tools/lesson_check.py [nbs/04_scores.ipynb ...]   # default: every notebook in nbs/
"""
import ast, json, re, sys
from pathlib import Path

from execute_notebooks import _source, directives   # nbdev's `#| name: value` cell directives

ROOT = Path(__file__).resolve().parents[1]
MAX_CHECKS = 4   # check lines (test_eq, test_fail, test_close, assert, ...) a visible example may show
CHECK = re.compile(r"^\s*(test_\w+\(|assert\b)")


def _is_export(src:str) -> bool: return bool({"export", "exports"} & set(directives(src)))
def _is_hidden(src:str) -> bool: return "hide" in directives(src)


def public_names(src:str) -> list[str]:
    "Public functions and classes an export cell defines (those `show_doc` renders), `@patch`ed methods included."
    try: tree = ast.parse(re.sub(r"^#\|.*$", "", src, flags=re.M))
    except SyntaxError: return []
    return [n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def is_example(cell) -> bool:
    "A code cell a reader sees that does more than render docs."
    s = _source(cell)
    if cell["cell_type"] != "code" or _is_hidden(s) or _is_export(s): return False
    body = [l for l in s.splitlines() if l.strip() and not l.startswith("#|")]
    return bool(body) and not all(l.strip().startswith("show_doc(") for l in body)


def check(path:Path) -> tuple[int, list[str], list[str]]:
    "(export cells with public names, those without an example before the next export cell, batteries)."
    cells = json.loads(path.read_text())["cells"]
    n, missing, batteries = 0, [], []
    for i, c in enumerate(cells):
        s = _source(c)
        if c["cell_type"] == "code" and is_example(c):
            k = sum(bool(CHECK.match(l)) for l in s.splitlines())
            if k > MAX_CHECKS: batteries.append(f"cell {i}: {k} check lines")
        if c["cell_type"] != "code" or not _is_export(s) or not (names := public_names(s)): continue
        n += 1
        for c2 in cells[i + 1:]:
            if c2["cell_type"] == "code" and _is_export(_source(c2)): missing.append(f"cell {i}: {', '.join(names)}"); break
            if is_example(c2): break
        else: missing.append(f"cell {i}: {', '.join(names)}")
    return n, missing, batteries


def main(paths:list[str]) -> int:
    files = [Path(p) for p in paths] or sorted((ROOT/"nbs").glob("*.ipynb"))
    total = n_missing = n_batt = 0
    for f in files:
        n, missing, batteries = check(f)
        total, n_missing, n_batt = total + n, n_missing + len(missing), n_batt + len(batteries)
        for m in missing: print(f"{f.name} {m}: no example before the next export cell")
        for b in batteries: print(f"{f.name} {b} (a test battery: keep a few, the rest in a #| hide cell)")
    print(f"{total} export cells with public names; {n_missing} without an example; {n_batt} visible test batteries")
    return 1 if n_missing or n_batt else 0


if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
