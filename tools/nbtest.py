"""nbdev-test with the longest notebooks first: `make test` runs it beside pytest on 2 cores.

nbdev-test hands its workers the notebooks in name order, and the longest ones (17_experiments to
21_own_data) sort last: on 2 cores the run ended with one notebook of ~40 s on one core while the
other waited. Handing them out longest first (the order a greedy scheduler wants) leaves the short ones
for the end. Each notebook is tested exactly as `nbdev-test` tests it (`nbdev.test.test_nb`, the
project's `tst_flags` skipped, `--flags` forced, in nbs/, each worker process reused), and every
notebook is tested: the list below only orders them. `make test-slow` runs the cells flagged `#| slow`
(end-to-end demonstrations whose parts cells before them check on small inputs):
`python tools/nbtest.py --flags slow --flagged-only`.
"""
import argparse, json, sys, time
from pathlib import Path

from fastcore.parallel import parallel
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import test_nb

sys.path.insert(0, str(Path(__file__).parent))
from execute_notebooks import _source, directives   # nbdev's `#| name: value` cell directives

# the longest first, as measured by `python tools/nbtest.py --timing` (two workers, one thread each, `#| slow` cells
# skipped; seconds, 2026-12-08): 21_own_data 32, 19_pipeline 21, 18_reporting 20, 09_turtle, 02_models, 12_stages,
# 03_train 5, index 4; the rest take 3 s or less and keep nbdev-test's name order. A name missing here only costs time.
LONGEST_FIRST = ("21_own_data", "19_pipeline", "18_reporting", "09_turtle", "02_models", "12_stages", "03_train",
                 "index")


def ordered(files: list[Path]) -> list[Path]:
    "`files` in name order, those of LONGEST_FIRST moved to the front in its order."
    rank = {n: i for i, n in enumerate(LONGEST_FIRST)}
    return sorted(files, key=lambda f: (rank.get(f.stem, len(rank)), f.name))


def flagged(nb: Path, flags: set) -> bool:
    "Whether a code cell of `nb` carries one of `flags` (`#| slow`)."
    cells = json.loads(nb.read_text())["cells"]
    return any(c["cell_type"] == "code" and flags & set(directives(_source(c))) for c in cells)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flags", default="", help="space-separated test flags to run that are normally skipped")
    ap.add_argument("--n-workers", type=int, default=2)
    ap.add_argument("--file-re", default=None, help="only notebooks whose file name matches")
    ap.add_argument("--flagged-only", action="store_true", help="only notebooks with a cell flagged by --flags")
    ap.add_argument("--timing", action="store_true", help="print each notebook's seconds, longest first")
    a = ap.parse_args(argv)
    cfg = get_config()
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    # nbdev-test's own selection of notebooks (nbglob: no _ or . names), then its order changed
    files = [f.absolute() for f in nbglob(cfg.nbs_path, as_path=True, file_re=a.file_re)]
    if a.flagged_only: files = [f for f in files if flagged(f, set(a.flags.split()))]
    files = ordered(files)
    if not files:
        print("no notebooks to test"); return 0
    t0 = time.time()
    with working_directory(cfg.nbs_path):
        results = parallel(test_nb, files, skip_flags=skip, force_flags=a.flags.split(), n_workers=a.n_workers,
                           basepath=cfg.config_path, pause=0.01, cell_timeout=cfg.cell_timeout or None)
    failed = [f.name for (ok, _), f in zip(results, files) if not ok]
    if a.timing:
        for (_, t), f in sorted(zip(results, files), key=lambda r: -r[0][1]): print(f"{f.name}: {t:.0f} s")
    if failed:
        sys.stderr.write("notebooks that failed:\n\t" + "\n\t".join(failed) + "\n"); return 1
    print(f"Success: {len(files)} notebooks in {time.time() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
