"""Messages that name what is wrong (issue 27.12): a full disk names the file it could not write, a dangling
`--runs` link is called one."""
import contextlib, io, os

import numpy as np
import pytest

from scoreextra.core import save_json, save_npy
from scoreextra.runfolder import RunFolder


@pytest.mark.parametrize("write", ["json", "npy", "meta"])
def test_a_full_disk_names_the_file(tmp_path, monkeypatch, write):
    "Was: `[Errno 28] No space left on device` with no path."
    f = RunFolder(tmp_path, "extrapolate", {"k": 1})
    def full(*a, **k): raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    target = {"json": tmp_path / "a.json", "npy": tmp_path / "a.npy", "meta": f.file("meta.json")}[write]
    with pytest.raises(OSError) as e:
        if write == "json": save_json(target, {"a": 1})
        elif write == "npy": save_npy(target, np.arange(3))
        else: f.update_meta(status="running")
    assert e.value.errno == 28 and e.value.filename == str(target), (e.value, e.value.filename)
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]        # no temporary file left


def test_a_dangling_runs_link_is_named(tmp_path):
    "Was: 'File exists'."
    from scoreextra.cli import main
    os.symlink(tmp_path / "gone", tmp_path / "runs")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "--runs", str(tmp_path / "runs")]) == 2
    assert f"is a symbolic link to {tmp_path / 'gone'}, which does not exist" in err.getvalue(), err.getvalue()


def test_a_symlinked_npz_is_read_as_your_data(tmp_path):
    "Was: a `.npz` link to a file named otherwise was resolved to that name and refused as an unknown dataset."
    from scoreextra.data import dataset_name, load_dataset
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "blob.npz", x=rng.normal(size=(40, 3)).astype(np.float32), y=np.arange(40) % 2)
    (tmp_path / "blob.npz").rename(tmp_path / "blob")
    os.symlink(tmp_path / "blob", tmp_path / "mine.npz")
    name = dataset_name(str(tmp_path / "mine.npz"))
    assert name == str(tmp_path / "mine.npz") and len(load_dataset(name)) == 32     # 20% held out as the test split


def test_a_report_on_a_non_utf8_data_path_is_one_line_and_writes_nothing(tmp_path):
    "Was: `'utf-8' codec can't encode character '\\udcff'` after the first table was written: a partial report."
    from scoreextra.cli import main
    from scoreextra.pipeline import run
    d = os.fsdecode(os.fsencode(tmp_path) + b"/data_\xff")          # a folder name that is not UTF-8
    os.makedirs(d)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    np.savez(f"{d}/mine.npz", x=x, y=(x[:, 0] > 0).astype(int))
    run(f"{d}/mine.npz", "du", seed_size=0.25, extrapolators=["knn"], prune_rates=[0.5], ground_truth=False, baselines=["random"],
        score_epochs=11, final_epochs=1, no_pruning=False, selection="top", runs_root=tmp_path / "runs")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    msg = err.getvalue()
    assert code == 2 and msg.count("\n") == 1 and "data_\\udcff/mine.npz" in msg and "not UTF-8" in msg, msg
    assert not (tmp_path / "report").exists()
