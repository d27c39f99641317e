"""The code a reader sees is at most 100 characters wide (STYLE.md): check it, or fix it with --fix.

What a reader sees of a notebook on the docs site and on a code host is its example cells: an
export cell's source is folded on the site (its API entry is shown instead) and `#| hide` cells
are left out. So this checks every code line of the notebooks' other cells (nbs/*.ipynb and the
reports' report.ipynb) and every line of a fenced code block in README.md and the reports'
READMEs. `make test` runs it before the tests.

`--fix` rewrites the notebooks' over-long lines, each step touching only lines over the limit:
1. a trailing comment that pushes a line over goes on its own line above it;
2. `a; b` is cut into two statements; a line is broken after a comma inside brackets (the shallowest, then the rightmost that fits),
   the rest aligned after its opening bracket, as the notebooks write continuation lines;
3. a statement still over is formatted by `ruff format --range` at line length 100 (quotes kept);
4. a comment line is re-wrapped; a string literal inside brackets is split at a space into two.
What is still over is listed; fix it by hand. Re-execute the notebooks --fix changed
(`make notebooks NBS=...`): their stored outputs are tied to their code (tests/test_notebooks.py).

Usage: python tools/line_check.py [--fix] [FILE...]   (default: the notebooks and READMEs above)
"""
import argparse, io, json, re, shutil, subprocess, sys, textwrap, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import DIRECTIVE, _source as _src   # nbdev's `#| name: value` lines, a cell's source
sys.path.pop(0)
MAX = 100
FOLDED = re.compile(r"^#\|\s*(export|exports|exporti|hide|default_exp)\b", re.M)


def default_files(root=ROOT):
    return (sorted((root / "nbs").glob("*.ipynb")) + sorted((root / "reports").glob("*/report.ipynb"))
            + [root / "README.md"] + sorted((root / "reports").glob("*/README.md")))


def _set_src(c, text):
    lines = text.split("\n")
    c["source"] = [l + "\n" for l in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def shown(cell) -> bool:
    "A code cell whose source a reader sees (not an export cell, not hidden)."
    return cell["cell_type"] == "code" and not FOLDED.search(_src(cell))


def _tokens(text):
    "The tokens of `text` up to where it stops being valid Python (a line cut out of a statement)."
    out = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(text + "\n").readline): out.append(t)
    except (tokenize.TokenError, IndentationError, SyntaxError): pass
    return out




def long_lines(path: Path):
    "(where, line) of every line a reader sees that is over MAX characters."
    if path.suffix == ".ipynb":
        for i, c in enumerate(json.loads(path.read_text())["cells"]):
            if shown(c): yield from ((f"{path.name} cell {i}", l) for l in _src(c).splitlines() if len(l) > MAX)
            elif c["cell_type"] == "markdown": yield from ((f"{path.name} cell {i}", l) for l in _fenced(_src(c)))
    else:
        yield from ((f"{path.name}", l) for l in _fenced(path.read_text()))


def _fenced(md: str):
    "The lines over MAX inside the fenced code blocks of markdown `md` (prose may run long: it wraps)."
    fence = False
    for l in md.splitlines():
        if l.lstrip().startswith("```"): fence = not fence
        elif fence and len(l) > MAX: yield l


# --- --fix: each step rewrites only the lines over MAX ---

def _line_tokens(line):
    "(type, string, start col, end col) of one physical line, read without its indent (alone it would not parse)."
    ind = len(line) - len(line.lstrip())
    return [(t.type, t.string, t.start[1] + ind, t.end[1] + ind) for t in _tokens(line.lstrip()) if t.start[0] == t.end[0] == 1]


def _move_comments(code):
    com = {t.start[0]: t.start[1] for t in _tokens(code) if t.type == tokenize.COMMENT}
    out = []
    for n, line in enumerate(code.split("\n"), 1):
        if len(line) > MAX and n in com and line[:com[n]].strip():
            out += [re.match(r"\s*", line).group(0) + line[com[n]:], line[:com[n]].rstrip()]
        else: out.append(line)
    return "\n".join(out)


def _split_at_comma(line, base=0):
    "`line` broken after a comma inside brackets; `base`: the bracket depth the line starts in."
    ind = len(line) - len(line.lstrip())
    stack, best = [ind] * (base > 0), None
    for typ, text, start, end in _line_tokens(line):
        if typ != tokenize.OP: continue
        if text == ";" and not stack and line[end:].strip():     # `a; b` becomes two statements first
            return [line[:start].rstrip(), " " * ind + line[end:].lstrip()]
        if text in "([{": stack.append(end)
        elif text in ")]}":
            if stack: stack.pop()
        elif text == "," and stack and end <= MAX:
            rest = line[end:].lstrip()
            if rest and not rest.startswith("#") and (best is None or (-len(stack), end) > best[0]):  # shallowest
                best = ((-len(stack), end), end, stack[-1])
    if best is None or best[2] > 60: return None
    _, cut, indent = best
    return [line[:cut].rstrip(), " " * indent + line[cut:].lstrip()]


def _depths(code) -> dict:
    "Bracket depth at the start of each line (1-based)."
    depth, at = 0, {}
    for t in _tokens(code):
        for n in range(max(at, default=0) + 1, t.start[0] + 1): at[n] = depth
        if t.type == tokenize.OP and t.string in "([{": depth += 1
        elif t.type == tokenize.OP and t.string in ")]}": depth -= 1
    return at


def _split_string(line, depth):
    for typ, text, first, end in _line_tokens(line):
        if typ == tokenize.OP and text in "([{": depth += 1
        elif typ == tokenize.OP and text in ")]}": depth -= 1
        elif typ == tokenize.STRING and end > MAX and depth > 0:
            m = re.match(r"([a-zA-Z]*)(['\"])", text)
            if not m or text.startswith(m.group(1) + m.group(2) * 3): return None
            pre, q = m.groups()
            start, level, cut = first + len(pre) + 1, 0, None
            for j in range(start, min(end - 1, MAX - 1)):
                if "f" in pre.lower() and line[j] in "{}": level += 1 if line[j] == "{" else -1
                if line[j] == " " and level == 0 and line[j - 1] != "\\": cut = j + 1
            if cut is None or cut - start < 10: return None
            return [line[:cut] + q, " " * first + pre + q + line[cut:]]
    return None


def _refill(code, split):
    "`code` with each line over MAX cut by `split(line, depth it starts in)` while that shortens it."
    out, depths = [], _depths(code)
    for n, line in enumerate(code.split("\n"), 1):
        todo, d = [line], depths.get(n, 0)
        while todo:
            l = todo.pop(0)
            parts = split(l, d) if len(l) > MAX and not l.lstrip().startswith("#") else None
            if parts and len(parts[0]) < len(l): out.append(parts[0]); todo.insert(0, parts[1]); d = max(d, 1)
            else: out.append(l)
    return "\n".join(out)


def _ruff(code, n):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    width = len(code.split("\n")[n - 1]) + 1
    r = subprocess.run([ruff, "format", "--line-length", str(MAX), "--config", "format.quote-style='preserve'",
                        "--config", "format.skip-magic-trailing-comma=true", "--range", f"{n}:1-{n}:{width}",
                        "--stdin-filename", "cell.py", "-"], input=code + "\n", capture_output=True, text=True)
    return r.stdout.rstrip("\n") if r.returncode == 0 else code


def _wrap_comments(code):
    out = []
    for line in code.split("\n"):
        s = line.lstrip()
        if len(line) > MAX and s.startswith("#") and not s.startswith("#|"):
            ind = line[:len(line) - len(s)]
            out += textwrap.wrap(s.lstrip("#").strip(), MAX - len(ind) - 2, initial_indent=ind + "# ",
                                 subsequent_indent=ind + "# ", break_long_words=False, break_on_hyphens=False)
        else: out.append(line)
    return "\n".join(out)


def wrap(code: str) -> str:
    "`code` (one cell) with its lines over MAX rewritten (see the module docstring); other lines kept."
    lines = code.split("\n")
    k = next((i for i, l in enumerate(lines) if not DIRECTIVE.match(l)), len(lines))
    head, body = lines[:k], "\n".join(lines[k:])
    if not any(len(l) > MAX for l in body.split("\n")) or re.search(r"^\s*[%!]", body, re.M): return code
    body, tried = _refill(_move_comments(body), _split_at_comma), set()
    while (todo := [n for n, l in enumerate(body.split("\n"), 1)
                    if len(l) > MAX and n not in tried and not l.lstrip().startswith("#")]):
        tried.add(todo[0])
        if (new := _ruff(body, todo[0])) != body: body, tried = new, {t for t in tried if t < todo[0]}
    return "\n".join(head + [_refill(_wrap_comments(body), _split_string)])


def fix(path: Path) -> int:
    "Rewrite a notebook's over-long shown lines in place; the number of cells changed."
    nb, changed = json.loads(path.read_text()), 0
    for c in nb["cells"]:
        if shown(c) and (w := wrap(_src(c))) != _src(c): _set_src(c, w); changed += 1
    if changed: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--fix", action="store_true", help="rewrite the notebooks' over-long lines")
    a = ap.parse_args(argv)
    files = [f.resolve() for f in a.files] or default_files()
    if a.fix:
        for f in files:
            if f.suffix == ".ipynb" and (n := fix(f)): print(f"{f.name}: {n} cells rewritten; re-execute it")
    bad = [(w, l) for f in files for w, l in long_lines(f)]
    for w, l in bad: print(f"{w}: {len(l)} characters: {l[:80]}…")
    if bad: print(f"{len(bad)} lines a reader sees are over {MAX} characters (python tools/line_check.py --fix)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
