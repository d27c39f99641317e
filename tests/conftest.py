"""The longest test files first, so that `make test`'s workers (pytest-xdist, one file per worker, given out
in collection order with --no-loadscope-reorder) end on short files instead of one worker running a long file
while the others wait. Only the order changes: every test still runs, each file's tests in their own order."""
from pathlib import Path

# seconds of each file on one worker (pytest --durations=0, one thread, 2026-12-08): test_pipeline 24, test_own_data 23,
# test_faults 24 (mostly waiting on processes and locks), test_gpu_paths 15, test_gnn 16, test_cli_signals 15,
# test_structure 14, test_config_entry_points 14, test_break_even 13, test_train 9, test_security 8; the rest less.
# A name missing here only costs time.
LONGEST_FIRST = ("test_pipeline.py", "test_own_data.py", "test_faults.py", "test_gnn.py", "test_gpu_paths.py",
                 "test_cli_signals.py", "test_structure.py", "test_config_entry_points.py", "test_break_even.py",
                 "test_train.py", "test_security.py", "test_notebooks.py", "test_extrapolators.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {n: i for i, n in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(Path(str(it.fspath)).name, len(rank)))    # stable: the rest keep their order
