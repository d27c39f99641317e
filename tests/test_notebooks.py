"""The notebooks' stored outputs are current, so the tutorial and the docs show what the code does.

tools/execute_notebooks.py (`make notebooks`) stores, with the outputs, a hash of the code cells
they came from. A notebook fails here when it has no such hash, when a code cell changed since
(outputs older than the code), when a cell that certainly shows something (a print, a display, a
plain expression on its last line) has no stored output, or when an output shows a wall-clock
timing or a local/temporary path (different on every run or machine). The README being generated
from nbs/index.ipynb is tests/test_project.py::test_readme_in_sync_with_index_notebook.
"""
import json, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:
    import execute_notebooks as ex
finally:
    sys.path.pop(0)


def _notebooks():
    return [pytest.param(p, id=p.stem) for p in sorted((ROOT / "nbs").glob("*.ipynb"))]


def _load(path): return json.loads(Path(path).read_text())


@pytest.mark.parametrize("path", _notebooks())
def test_outputs_come_from_the_current_code(path):
    nb = _load(path)
    h = ex.stored_hash(nb)
    assert h is not None, f"{path.name} has no stored source hash: its outputs were not made by " \
                          f"tools/execute_notebooks.py; run `python tools/execute_notebooks.py nbs/{path.name}`"
    assert h == ex.source_hash(nb), f"{path.name}: code cells changed after its outputs were made " \
                                    f"({h} stored, {ex.source_hash(nb)} now); re-execute it"


@pytest.mark.parametrize("path", _notebooks())
def test_cells_that_show_something_have_outputs(path):
    nb = _load(path)
    missing = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and ex.runs(c)
               and ex.expects_output(ex._source(c)) and not c.get("outputs")]
    assert not missing, f"{path.name}: cells {missing} print or show a value but store no output; re-execute it"


@pytest.mark.parametrize("path", _notebooks())
def test_outputs_show_no_timings_or_local_paths(path):
    found = ex.unstable_outputs(_load(path))
    assert not found, f"{path.name}: outputs that change every run or machine: {found}"


def test_source_hash_follows_code_cells_only():
    nb = {"cells": [{"cell_type": "markdown", "source": "# a"}, {"cell_type": "code", "source": ["x = 1\n", "x"]}]}
    h = ex.source_hash(nb)
    nb["cells"][0]["source"] = "# a, reworded"
    assert ex.source_hash(nb) == h                                   # prose edits keep the outputs current
    nb["cells"][1]["source"] = "x = 2\nx"
    assert ex.source_hash(nb) != h                                   # a code edit makes them stale
    assert ex.source_hash({"cells": [{"cell_type": "code", "source": "x = 1\nx"}]}) == h   # list or str alike


def test_expects_output():
    yes = ["print(1)", "x = 2\nx", "for i in range(2): print(i)", "show_doc(f)", "df.head", "f'{x}'", "plt.show()",
           "#| export\nx = 1\nx[0]", "with ctx():\n    display(x)"]
    no = ["x = 1", "test_eq(f(1), 2)", "def f():\n    print(1)", "import numpy as np", "rng.seed(0)", "x;",
          "#| eval: false\nx = 1", "class A:\n    def show(self): print(1)", "def g(): return lambda: print(2)"]
    assert [s for s in yes if not ex.expects_output(s)] == []
    assert [s for s in no if ex.expects_output(s)] == []


def test_unstable_outputs_are_found():
    out = lambda t: {"cell_type": "code", "source": "", "outputs": [{"output_type": "stream", "name": "stdout", "text": t}]}
    nb = {"cells": [out("trained in 12.3s\n"), out("saved to /tmp/tmpab12cd/x.npy"), out("accuracy 0.93, 10 epochs, 12 samples"),
                    {"cell_type": "code", "source": "", "outputs": [{"output_type": "execute_result", "data": {"text/plain": "'/work/main/runs'"}}]}]}
    assert [(i, k) for i, k, _ in ex.unstable_outputs(nb)] == [(0, "timing"), (1, "local path"), (3, "local path")]


def test_execute_keeps_outputs_drops_stderr_and_stores_hash_through_clean(tmp_path):
    cell = lambda i, src: {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": src}
    nb = {"cells": [cell(0, "import os, sys, time\nprint('threads', os.environ['OMP_NUM_THREADS'], flush=True); time.sleep(0.3)\n"
                            "print(os.path.basename(os.getcwd()))"),
                    cell(1, "sys.stderr.write('progress 50%\\n')\n6 * 7"),
                    cell(2, "#| eval: false\nraise RuntimeError('eval: false cells must not run')"),
                    cell(3, "import matplotlib.pyplot as plt\nplt.plot([0, 1]); plt.show()")],
          "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}, "stale": 1},
          "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "probe.ipynb"
    p.write_text(json.dumps(nb))
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), str(p)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = _load(p)
    c = out["cells"]
    assert len(c[0]["outputs"]) == 1 and "".join(c[0]["outputs"][0]["text"]) == "threads 1\nnbs\n"  # one thread, cwd nbs/,
                                                                                    # chunks merged
    assert [o["output_type"] for o in c[1]["outputs"]] == ["execute_result"]        # stderr stream dropped
    assert "".join(c[1]["outputs"][0]["data"]["text/plain"]) == "42"
    assert c[2]["outputs"] == [] and c[2]["metadata"] == {}                         # not run, no leftover tag
    assert "image/png" in c[3]["outputs"][0]["data"]
    assert all(x["execution_count"] is None for x in c)                             # nbdev-clean ran ...
    assert "stale" not in out["metadata"]
    assert ex.stored_hash(out) == ex.source_hash(out) == ex.source_hash(nb)         # ... and kept the hash


def test_a_failing_notebook_is_left_as_it_was(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {}, "outputs": [], "source": "1/0"}],
          "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "bad.ipynb"
    p.write_text(json.dumps(nb))
    before = p.read_text()
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), str(p)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "ZeroDivisionError" in r.stdout and p.read_text() == before


def test_nbtest_orders_every_notebook_longest_first_and_finds_the_flagged(tmp_path):
    "tools/nbtest.py (make test's notebook run): all notebooks, the listed long ones first; --flagged-only's filter."
    sys.path.insert(0, str(ROOT / "tools"))
    try: import nbtest
    finally: sys.path.pop(0)
    nbs = sorted((ROOT / "nbs").glob("*.ipynb"))
    assert set(nbtest.LONGEST_FIRST) <= {p.stem for p in nbs}, "a notebook of LONGEST_FIRST was renamed"
    order = nbtest.ordered(nbs)
    assert sorted(order) == nbs and [p.stem for p in order[:len(nbtest.LONGEST_FIRST)]] == list(nbtest.LONGEST_FIRST)
    rest = order[len(nbtest.LONGEST_FIRST):]
    assert rest == sorted(rest)
    cell = lambda src: {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
    for name, srcs in (("plain", ["x = 1", "#| hide\ny = 2"]), ("slow", ["x = 1", "#| slow\nrun()"])):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps({"cells": [cell(s) for s in srcs], "metadata": {}}))
    assert [nbtest.flagged(tmp_path / f"{n}.ipynb", {"slow"}) for n in ("plain", "slow")] == [False, True]
    # the slow cells make test-slow runs are there, and in the notebooks it runs
    assert {p.stem for p in nbs if nbtest.flagged(p, {"slow"})} == {"08_prune", "17_experiments", "18_converge", "19_pipeline",
                                                                  "21_own_data"}


def test_conftest_orders_existing_test_files():
    from conftest import LONGEST_FIRST
    assert set(LONGEST_FIRST) <= {p.name for p in (ROOT / "tests").glob("test_*.py")}, "a file of LONGEST_FIRST was renamed"
