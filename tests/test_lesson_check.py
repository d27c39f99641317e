"""tools/lesson_check.py (in `make test`): every exported public name is followed by a visible example before the next
export cell, and no visible cell is a test battery."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:
    import lesson_check
finally:
    sys.path.pop(0)


def _nb(path:Path, *sources:str) -> Path:
    cells = [{"cell_type": "markdown" if s.startswith("md:") else "code", "id": f"{i:08x}", "metadata": {},
              "source": s.removeprefix("md:")} for i, s in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_a_public_definition_needs_a_visible_example_before_the_next_export(tmp_path):
    nb = _nb(tmp_path/"a.ipynb",
             "#| export\ndef f(x): return x + 1", "show_doc(f)", "#| hide\nassert f(1) == 2",   # docs, a hidden check
             "#| export\ndef _g(): pass\nclass Thing: pass", "md:A thing:", "Thing()",            # an example
             "#| export\ndef h(): pass")                                                          # nothing after it
    n, missing, batteries = lesson_check.check(nb)
    assert (n, batteries) == (3, [])
    assert missing == ["cell 0: f", "cell 6: h"]
    assert lesson_check.main([str(nb)]) == 1


def test_a_visible_battery_is_reported_and_a_hidden_one_is_not(tmp_path):
    checks = "\n".join(f"test_eq(f({i}), {i + 1})" for i in range(5))
    nb = _nb(tmp_path/"b.ipynb", "#| export\ndef f(x): return x + 1", "f(1)\n" + checks, "#| hide\n" + checks)
    assert lesson_check.check(nb) == (1, [], ["cell 1: 5 check lines"])
    ok = _nb(tmp_path/"c.ipynb", "#| export\ndef f(x): return x + 1", "f(1)\ntest_eq(f(1), 2)", "#| hide\n" + checks)
    assert lesson_check.check(ok) == (1, [], []) and lesson_check.main([str(ok)]) == 0

