"""Generate README.md from nbs/index.ipynb.

`nbdev-readme` needs Quarto, which is not installable everywhere; this does the same job
for a clean notebook: markdown cells verbatim, code cells as ```python blocks followed by their stored
text output (stdout and plain-text results, as nbdev's README shows them; `#| output: false` drops it),
cells marked `#| hide` dropped and nbdev directive lines (`#| ...`) removed.

Usage: python tools/make_readme.py [--check]   (--check: exit 1 if README.md is stale)
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n"


def _text_output(cell) -> str:
    "The stored stdout and plain-text results of a code cell, as one string (stderr and images left out)."
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stdout": text = o.get("text", "")
        elif o.get("output_type") == "execute_result": text = o.get("data", {}).get("text/plain", "")
        else: continue
        out.append("".join(text) if isinstance(text, list) else text)
    return "".join(out).strip("\n")


def render(nb_path: Path = ROOT / "nbs" / "index.ipynb") -> str:
    cells = json.loads(nb_path.read_text())["cells"]
    parts = []
    for c in cells:
        src = "".join(c["source"]).strip("\n")
        lines = src.splitlines()
        if c["cell_type"] == "code":
            if any(l.strip() in ("#| hide", "#|hide") for l in lines): continue
            code = "\n".join(l for l in lines if not l.lstrip().startswith("#|")).strip("\n")
            if code: parts.append(f"```python\n{code}\n```")
            shown = "" if any(l.replace(" ", "") == "#|output:false" for l in lines) else _text_output(c)
            if code and shown: parts.append(f"```\n{shown}\n```")
        elif c["cell_type"] == "markdown" and src:
            parts.append(src)
    return HEADER + "\n\n".join(parts) + "\n"


def main(argv=sys.argv[1:]):
    text, readme = render(), ROOT / "README.md"
    if "--check" in argv:
        if not readme.exists() or readme.read_text() != text:
            print("README.md is out of date with nbs/index.ipynb: run `make readme`", file=sys.stderr)
            return 1
        return 0
    readme.write_text(text)
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
