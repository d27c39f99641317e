"""Code is at most 100 characters wide (STYLE.md): check it, or fix it with --fix.

Checked: every code line of the notebooks (nbs/*.ipynb, so also the package `nbdev-export` makes of
their export cells, and the reports' report.ipynb) and every line of a fenced code block in
README.md, the reports' READMEs and the notebooks' markdown. `make test` runs it before the tests.
(Not scoreextra/__init__.py: its docstring is the module list nbdev-export writes from the
notebooks' summaries.)

`--fix` rewrites the notebooks' over-long lines, each step touching only lines over the limit:
1. a one-line docstring over the limit becomes a triple-quoted one wrapped at spaces; a long line
   of a triple-quoted docstring is wrapped (a bullet's continuation indented under its text);
2. a trailing comment that pushes a line over goes on its own line above it (with the comment
   lines continuing it); a docment comment above its parameter is read by `show_doc` the same way;
   `# noqa` stays where it is;
3. `a; b` is cut into two statements (not the body of `if x: a; b`); a line is broken after a comma
   inside brackets (the shallowest, then the rightmost that fits; not a `for k, v` target), the
   rest aligned after its opening bracket, as the notebooks write continuation lines;
4. a statement still over is formatted by `ruff format --range` at line length 100 (quotes kept);
5. a block of comment lines is re-flowed; a string literal inside brackets is split at a space.
What is still over is listed; fix it by hand. Re-execute the notebooks --fix changed
(`make notebooks NBS=...`): their stored outputs are tied to their code (tests/test_notebooks.py);
`nbdev-export` the package.

Usage: python tools/line_check.py [--fix] [FILE...]   (default: the files above)
"""
import argparse, ast, io, json, re, shutil, subprocess, sys, textwrap, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import DIRECTIVE, _source as _src   # nbdev's `#| name: value` lines, a cell's source
sys.path.pop(0)
MAX = 100
IMPORT = re.compile(r"\s*from\s+\S+\s+import\s+")
NOQA = re.compile(r"#\s*(noqa|type:|pragma)")   # comments a tool reads on their line: never moved
# a line opening a block: its `a; b` body is one suite, never cut into two statements
COMPOUND = re.compile(r"(if|elif|else|for|while|with|try|except|finally|def|class|async|match|case)\b")


def default_files(root=ROOT):
    return (sorted((root / "nbs").glob("*.ipynb")) + sorted((root / "reports").glob("*/report.ipynb"))
            + [root / "README.md"] + sorted((root / "reports").glob("*/README.md")))


def _set_src(c, text):
    lines = text.split("\n")
    c["source"] = [l + "\n" for l in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


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
            if c["cell_type"] == "code":
                yield from ((f"{path.name} cell {i}", l) for l in _src(c).splitlines() if len(l) > MAX)
            elif c["cell_type"] == "markdown": yield from ((f"{path.name} cell {i}", l) for l in _fenced(_src(c)))
    elif path.suffix == ".py":
        yield from ((path.name, l) for l in path.read_text().splitlines() if len(l) > MAX)
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


def _docstrings(code):
    "The string nodes of `code`'s docstrings (module, class, function)."
    try: tree = ast.parse(code)
    except SyntaxError: return []
    return [n.body[0].value for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
            and isinstance(n.body[0].value.value, str)]


def _fill(text, width, first, rest):
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False)


def _wrap_docstrings(code):
    "Step 1: over-long docstrings wrapped at spaces (the text `inspect.cleandoc` reads keeps its words)."
    lines = code.split("\n")
    for d in sorted(_docstrings(code), key=lambda d: -d.lineno):
        a, b = d.lineno - 1, d.end_lineno - 1
        if all(len(l) <= MAX for l in lines[a:b + 1]): continue
        if a == b and (new := _one_line_doc(lines[a], d.col_offset, d.end_col_offset)): lines[a:a + 1] = new
        elif a < b or lines[a][d.col_offset:].lstrip("rRuU").startswith(('"""', "'''")):
            lines[a:b + 1] = [w for l in lines[a:b + 1] for w in _doc_line(l)]
    return "\n".join(lines)


def _one_line_doc(line, start, end):
    "`\"text\"` over the limit as `\"\"\"text\"\"\"` wrapped, continuation lines under its first letter's indent."
    lit, rest = line[start:end], line[end:]
    m = re.match(r"([rRuU]?)(['\"])(?!\2\2)", lit)
    if not m or rest.strip(): return None
    pre, body = m.group(1), lit[len(m.group(0)):-1]
    if '"""' in body or (body.endswith('"') and not body.endswith('\\"')): return None
    out = _fill(f'{pre}"""{body}"""', MAX - start, "", " " * start)
    return [line[:start] + out[0]] + out[1:]


def _doc_line(line):
    "A line inside a triple-quoted docstring, wrapped if over the limit (a bullet's text indented under it)."
    s = line.lstrip()
    if len(line) <= MAX or s.startswith(">>>"): return [line]
    ind = line[:len(line) - len(s)]
    first, *more = _fill(s, MAX - len(ind), "", "")
    cont = ind + "  " * bool(re.match(r"[-*] |\d+\. ", s))
    return [ind + first] + _fill(" ".join(more), MAX, cont, cont)


def _first_param_down(code):
    "A def line over the limit with a commented first parameter: the parameter goes to the next line."
    com = {t.start[0]: t.start[1] for t in _tokens(code) if t.type == tokenize.COMMENT}
    out = []
    for n, line in enumerate(code.split("\n"), 1):
        m = re.match(r"\s*(async\s+)?def\s+\w+\(", line)
        if len(line) > MAX and m and n in com and line[m.end():com[n]].strip():
            out += [line[:m.end()], " " * m.end() + line[m.end():]]
        else: out.append(line)
    return "\n".join(out)


def _move_comments(code):
    """Step 2: a trailing comment over the limit (and the comment lines under it that continue it)
    goes above its line, at its indent: `show_doc` reads comment lines above a parameter as its docment."""
    code = _first_param_down(code)
    com = {t.start[0]: t.start[1] for t in _tokens(code) if t.type == tokenize.COMMENT}
    lines, out, n = code.split("\n"), [], 0
    while n < len(lines):
        line, n = lines[n], n + 1
        c = com.get(n)
        if len(line) > MAX and c is not None and line[:c].strip() and not NOQA.match(line[c:]):
            text = line[c:].lstrip("#").strip()
            while n < len(lines) and com.get(n + 1) == c and not lines[n][:c].strip():   # continues it
                text += " " + lines[n][c:].lstrip("#").strip(); n += 1
            ind = " " * (len(line) - len(line.lstrip()))
            out += _fill(text, MAX, ind + "# ", ind + "# ") + [line[:c].rstrip()]
        else: out.append(line)
    return "\n".join(out)


def _split_at_comma(line, base=0, limit=MAX):
    "`line` broken after a comma inside brackets; `base`: the bracket depth the line starts in."
    noqa = next((t for t in _line_tokens(line) if t[0] == tokenize.COMMENT and NOQA.match(t[1])), None)
    if noqa:   # a noqa comment stays on the statement's first line, where ruff reads it
        parts = _split_at_comma(line[:noqa[2]].rstrip(), base, limit - len(noqa[1]) - 2)
        return parts and [parts[0] + "  " + noqa[1], parts[1]]
    if (m := IMPORT.match(line)) and "(" not in line and "#" not in line:   # `from m import a, b`: bracketed
        line = f"{m.group(0)}({line[m.end():].rstrip()})"
    ind = len(line) - len(line.lstrip())
    stack, best, target = [ind] * (base > 0), None, set()   # target: depths inside a `for … in` target
    compound = COMPOUND.match(line.lstrip())
    for typ, text, start, end in _line_tokens(line):
        if typ == tokenize.NAME and text in ("for", "in"):
            (target.add if text == "for" else target.discard)(len(stack))
        if typ != tokenize.OP: continue
        if text == ";" and not stack and not compound and line[end:].strip():  # `a; b`: two statements
            return [line[:start].rstrip(), " " * ind + line[end:].lstrip()]
        if text == ":" and compound and not stack and line[end:].strip() and not line[end:].lstrip().startswith("#"):
            return None      # `if x: body` over the limit: ruff puts the body on its own line
        if text in "([{": stack.append(end)
        elif text in ")]}":
            if stack: target.discard(len(stack)); stack.pop()
        elif text == "," and stack and end <= limit and len(stack) not in target:
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
    "Step 5: a block of comment lines at one indent holding a line over the limit, re-flowed."
    lines, out, n = code.split("\n"), [], 0
    comment = lambda l: l.lstrip().startswith("#") and not l.lstrip().startswith("#|")
    while n < len(lines):
        if not (comment(lines[n]) and len(lines[n]) > MAX): out.append(lines[n]); n += 1; continue
        ind = lines[n][:len(lines[n]) - len(lines[n].lstrip())]
        a, b = n, n + 1
        block = lambda l: comment(l) and l.startswith(ind + "# ") and not l.startswith(ind + "#  ")  # not an indented list
        while a > 0 and block(lines[a - 1]) and out and out[-1] is lines[a - 1]: a -= 1; out.pop()
        while b < len(lines) and block(lines[b]): b += 1
        out += _fill(" ".join(l.strip().lstrip("#").strip() for l in lines[a:b]), MAX, ind + "# ", ind + "# ")
        n = b
    return "\n".join(out)


def wrap(code: str) -> str:
    "`code` (one cell) with its lines over MAX rewritten (see the module docstring); other lines kept."
    lines = code.split("\n")
    k = next((i for i, l in enumerate(lines) if not DIRECTIVE.match(l)), len(lines))
    head, body = lines[:k], "\n".join(lines[k:])
    if not any(len(l) > MAX for l in body.split("\n")) or re.search(r"^\s*[%!]", body, re.M): return code
    body, tried = _refill(_move_comments(_wrap_docstrings(body)), _split_at_comma), set()
    while (todo := [n for n, l in enumerate(body.split("\n"), 1)
                    if len(l) > MAX and n not in tried and not l.lstrip().startswith("#")]):
        tried.add(todo[0])
        if (new := _ruff(body, todo[0])) != body: body, tried = new, {t for t in tried if t < todo[0]}
    return "\n".join(head + [_refill(_wrap_comments(body), _split_string)])


def fix(path: Path) -> int:
    "Rewrite a notebook's over-long code lines (or a .py file's) in place; the number of cells changed."
    if path.suffix == ".py":
        text = path.read_text()
        if (w := wrap(text.rstrip("\n")) + "\n") != text: path.write_text(w)
        return int(w != text)
    nb, changed = json.loads(path.read_text()), 0
    for c in nb["cells"]:
        if c["cell_type"] == "code" and (w := wrap(_src(c))) != _src(c): _set_src(c, w); changed += 1
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
            if f.suffix in (".ipynb", ".py") and (n := fix(f)): print(f"{f.name}: {n} cells rewritten; re-execute it")
    bad = [(w, l) for f in files for w, l in long_lines(f)]
    for w, l in bad: print(f"{w}: {len(l)} characters: {l[:80]}…")
    if bad: print(f"{len(bad)} lines a reader sees are over {MAX} characters (python tools/line_check.py --fix)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
