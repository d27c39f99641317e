"""The package is what `nbdev-export` makes of the notebooks: a module edited by hand, or a notebook edited and not
exported, fails here. The notebooks are exported into a copy of the project in a temporary folder (about 3 s), never
into scoreextra/ itself."""
import shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "scoreextra"
HAND_EDIT = "\n# edited by hand\n"


def _modules(pkg:Path) -> dict: return {p.name: p.read_text() for p in sorted(pkg.glob("*.py"))}


def test_the_package_is_what_nbdev_export_makes_of_the_notebooks(tmp_path):
    (tmp_path / "nbs").mkdir()
    for nb in (ROOT / "nbs").glob("*.ipynb"): shutil.copy2(nb, tmp_path / "nbs")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path)   # [tool.nbdev]: nbs/ -> scoreextra/, found from the cwd upwards
    shutil.copytree(PKG, tmp_path / "scoreextra", ignore=shutil.ignore_patterns("__pycache__"))
    copy = tmp_path / "scoreextra" / "core.py"
    copy.write_text(copy.read_text() + HAND_EDIT)   # the export must overwrite this, or the comparison proves nothing
    r = subprocess.run([sys.executable, "-c", "from nbdev.doclinks import nbdev_export; nbdev_export()"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert HAND_EDIT not in copy.read_text(), "nbdev-export did not write into the temporary copy"
    exported, committed = _modules(tmp_path / "scoreextra"), _modules(PKG)
    changed = [name for name in exported if exported[name] != committed.get(name)]
    assert not changed, (f"nbdev-export would change scoreextra/{{{', '.join(changed)}}}: edit the notebooks in nbs/ "
                         "(scoreextra/*.py is generated from them), then run nbdev-export")
