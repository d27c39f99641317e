"""Execute notebooks in place, keep their outputs, and record which sources the outputs belong to.

`make notebooks` runs this on every notebook of nbs/ (python tools/execute_notebooks.py
nbs/*.ipynb). For each notebook it:

- executes it top to bottom with nbclient (working directory nbs/ unless --cwd, OMP_NUM_THREADS=1,
  a generous per-cell timeout); cells marked `#| eval: false` (or `#| gpu`) are not run;
- drops stderr stream outputs (progress bars, warnings that print local paths) and merges the
  stdout chunks of a cell into one output;
- stores a hash of its code-cell sources in the notebook metadata (`scoreextra.source_hash`;
  nbdev-clean keeps it: `allowed_metadata_keys` in pyproject.toml), so that
  tests/test_notebooks.py can tell when a code cell changed after the outputs were made;
- writes it back and runs nbdev-clean on it (no execution counts, no cell metadata but tags).

A notebook whose run fails is left as it was and the tool exits 1 after the others.
Usage: python tools/execute_notebooks.py NB.ipynb [NB.ipynb ...] [--timeout S] [-j JOBS]
"""
import argparse, ast, hashlib, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
META_KEY = "scoreextra"            # notebook metadata: {"source_hash": "sha256:<16 hex>"}
SKIP_TAG = "skip-execution"        # nbclient leaves cells with this tag alone
DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
# what an output must not show: it would change on every run or every machine
TIMING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|sec|secs|seconds|ms|min)\b(?!\w)|\belapsed\b|\bit/s\b|\bs/it\b", re.I)
LOCAL_PATH = re.compile(r"(?:/tmp/|/var/folders/|/private/var/|/home/\w+|/root/|/work/|site-packages/|[A-Z]:\\\\Users)")


def _source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def source_hash(nb: dict) -> str:
    "Hash of the code-cell sources, in order (markdown edits do not make outputs stale)."
    srcs = [_source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    return "sha256:" + hashlib.sha256(json.dumps(srcs).encode()).hexdigest()[:16]


def stored_hash(nb: dict):
    return nb.get("metadata", {}).get(META_KEY, {}).get("source_hash")


def directives(src: str) -> dict:
    "nbdev `#| name: value` lines at the top of a cell."
    out = {}
    for line in src.splitlines():
        if not line.strip(): continue
        m = DIRECTIVE.match(line)
        if not m: break
        out[m.group(1)] = m.group(2)
    return out


def runs(cell, skip_flags=("gpu",)) -> bool:
    "Whether execution runs this code cell: not `#| eval: false`, not a flag we skip (default: gpu)."
    d = directives(_source(cell))
    return d.get("eval", "").lower() != "false" and not any(f in d for f in skip_flags)


_SHOWS = {"print", "display", "show_doc", "show", "pprint", "markdown", "Markdown"}


def expects_output(src: str) -> bool:
    """Whether a cell's code certainly shows something when run: a top-level print/display/
    show_doc/plt.show call (also inside top-level for/with/if), or a last line that is a plain
    expression other than a call (a name, an attribute, a subscript, an f-string...). A call as the
    last line may return None (`rng.seed(0)`), so it is not counted."""
    code = "\n".join(l for l in src.splitlines() if not DIRECTIVE.match(l) and not l.lstrip().startswith(("%", "!")))
    try: tree = ast.parse(code)
    except SyntaxError: return False
    if not tree.body: return False

    def shows(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): return False
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in _SHOWS: return True
        return any(shows(ch) for ch in ast.iter_child_nodes(node))

    if any(shows(s) for s in tree.body): return True
    last = tree.body[-1]
    return (isinstance(last, ast.Expr) and not isinstance(last.value, (ast.Call, ast.Await, ast.Yield))
            and not (isinstance(last.value, ast.Constant) and last.value.value is None)
            and not code.rstrip().endswith(";"))


def output_text(out) -> str:
    "The text a reader sees of one output (streams, text/plain, markdown, html; not images)."
    if out.get("output_type") == "stream": t = out.get("text", "")
    elif out.get("output_type") == "error": t = "\n".join(out.get("traceback", []))
    else: t = "".join("".join(v) if isinstance(v, list) else v for k, v in out.get("data", {}).items()
                      if k.startswith("text/"))
    return "".join(t) if isinstance(t, list) else t


def unstable_outputs(nb: dict):
    "(cell number, kind, snippet) for outputs that print a timing or a local/temporary path."
    found = []
    for i, c in enumerate(nb["cells"]):
        for o in c.get("outputs", []) if c["cell_type"] == "code" else []:
            t = output_text(o)
            for kind, rx in (("timing", TIMING), ("local path", LOCAL_PATH)):
                if m := rx.search(t):
                    found.append((i, kind, t[max(0, m.start() - 40):m.end() + 40].replace("\n", "⏎")))
    return found


def _merge_streams(outputs):
    "Consecutive stdout chunks as one output, as a reader sees them (and as stable diffs want them)."
    merged = []
    for o in outputs:
        if merged and o.get("output_type") == "stream" and merged[-1].get("output_type") == "stream" \
                and merged[-1].get("name") == o.get("name"):
            merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(o["text"])
        else: merged.append(o)
    return merged


def execute(path: Path, timeout: int = 1800, skip_flags=("gpu",), cwd: Path = ROOT / "nbs") -> dict:
    "Execute one notebook in place (see the module docstring); returns it as written."
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    h = source_hash(nb)
    skipped = []
    for c in nb.cells:
        if c.cell_type == "code" and not runs(c, skip_flags):
            tags = c.metadata.setdefault("tags", [])
            if SKIP_TAG not in tags: tags.append(SKIP_TAG); skipped.append(id(c))
    os.environ["OMP_NUM_THREADS"] = "1"      # inherited by the kernel
    # ipc: the kernel talks over local sockets, not TCP (no "running over TCP without encryption" warning)
    with tempfile.TemporaryDirectory(prefix="nbexec-") as sock:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sock) / "kernel"))
        try: NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}}).execute()
        finally:      # a client given its km leaves the kernel running
            if km.has_kernel: km.shutdown_kernel(now=True)
    for c in nb.cells:
        if c.cell_type != "code": continue
        if id(c) in skipped:
            c.metadata.tags.remove(SKIP_TAG)
            if not c.metadata.tags: del c.metadata["tags"]
        c.outputs = _merge_streams([o for o in c.outputs if not (o.output_type == "stream" and o.name == "stderr")])
    assert source_hash(nb) == h, "sources changed during execution"
    nb.metadata[META_KEY] = {"source_hash": h}
    nbformat.write(nb, path)
    r = subprocess.run([str(Path(sys.executable).parent / "nbdev-clean"), "--fname", str(path)], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0: raise RuntimeError(f"nbdev-clean failed on {path}: {r.stderr}")
    return json.loads(path.read_text())


def _run_one(p: Path, timeout: int, skip_flags: tuple, cwd: Path) -> tuple:
    "Execute one notebook; (path, ok, report lines)."
    t0 = time.time()
    try:
        nb = execute(p, timeout, skip_flags, cwd)
    except Exception as e:
        return p, False, [f"FAILED {p}: {type(e).__name__}: {str(e)[-2000:]}"]
    n_out = sum(bool(c.get("outputs")) for c in nb["cells"] if c["cell_type"] == "code")
    lines = [f"executed {p} in {time.time() - t0:.0f} s: {n_out} cells with output, {stored_hash(nb)}"]
    return p, True, lines + [f"  warning: cell {i} output shows a {kind}: …{snip}…" for i, kind, snip in unstable_outputs(nb)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    ap.add_argument("--skip-flags", default="gpu", help="nbdev flags whose cells are not run (default: gpu)")
    ap.add_argument("--cwd", type=Path, default=ROOT / "nbs", help="the kernel's working directory (default nbs/)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="notebooks executed at once, one kernel each (default 1)")
    a = ap.parse_args(argv)
    args = (a.timeout, tuple(a.skip_flags.split()), a.cwd.resolve())
    if a.jobs > 1:      # kernels are processes: threads only wait on them
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(a.jobs) as pool: results = pool.map(lambda p: _run_one(p, *args), a.notebooks)
    else: results = (_run_one(p, *args) for p in a.notebooks)
    failed = []
    for p, ok, lines in results:
        print("\n".join(lines), flush=True)
        if not ok: failed.append(p)
    if failed: print(f"{len(failed)} failed: {' '.join(map(str, failed))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
