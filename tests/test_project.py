"Project plumbing: README generated from the index notebook, papermill tags kept by nbdev-clean."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_readme_in_sync_with_index_notebook():
    r = subprocess.run([sys.executable, "tools/make_readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_readme_renders_markdown_and_drops_hidden_cells(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_readme
    finally:
        sys.path.pop(0)
    cell = lambda kind, src: {"cell_type": kind, "metadata": {}, "source": src, **({"outputs": [], "execution_count": None} if kind == "code" else {})}
    printed = cell("code", "print(3)")
    printed["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["3\n"]},
                          {"output_type": "stream", "name": "stderr", "text": ["a warning\n"]}]
    quiet = cell("code", "#| output: false\nprint(4)")
    quiet["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["4\n"]}]
    nb = {"cells": [cell("markdown", "# Title\n\ntext"), cell("code", "#| hide\nsecret = 1"),
                    cell("code", "#| eval: false\nshown = 2"), printed, quiet],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "index.ipynb").write_text(json.dumps(nb))
    text = make_readme.render(tmp_path / "index.ipynb")
    assert "# Title\n\ntext" in text and "```python\nshown = 2\n```" in text
    assert "```python\nprint(3)\n```\n\n```\n3\n```" in text        # the tour shows what it printed
    assert "a warning" not in text and "\n4\n" not in text              # stderr and `output: false` stay out
    assert "secret" not in text and "#|" not in text
    real = make_readme.render()
    assert "# scoreextra" in real and "make test" in real


def test_nbdev_clean_keeps_papermill_parameters_tag(tmp_path):
    "papermill finds the parameters cell by its tag; nbdev-clean must not strip it."
    nbs = ROOT / "nbs"
    probe = nbs / "zz_tag_probe.ipynb"
    nb = {"cells": [{"cell_type": "code", "execution_count": 3, "id": "abc",
                     "metadata": {"tags": ["parameters"], "scrolled": True},
                     "outputs": [], "source": ["seed = 0\n"]}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    probe.write_text(json.dumps(nb))
    try:
        r = subprocess.run([str(BIN / "nbdev-clean"), "--fname", str(probe)], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        cell = json.loads(probe.read_text())["cells"][0]
    finally:
        probe.unlink()
    assert cell["metadata"] == {"tags": ["parameters"]}   # tag kept, other metadata stripped
    assert cell["execution_count"] is None                 # and it really was cleaned
