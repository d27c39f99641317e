"""The command line never shows a traceback (issue 27.8): a diverging training, memory running out, Ctrl-C and
SIGTERM each end in one line on stderr with the conventional exit status (1 for a failure, 130 for Ctrl-C,
143 for SIGTERM); SCOREEXTRA_TRACEBACK=1 still shows the traceback."""
import contextlib, io, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("exc,code", [(FloatingPointError("loss is nan at epoch 1: lower lr?"), 1),
                                      (MemoryError("Unable to allocate 745. GiB"), 1), (RecursionError("too deep"), 1),
                                      (RuntimeError("CUDA error: out of memory"), 1), (KeyboardInterrupt(), 130)],
                         ids=lambda x: type(x).__name__ if isinstance(x, BaseException) else str(x))
def test_a_failure_is_one_line_with_its_exit_status(monkeypatch, tmp_path, exc, code):
    "Was: FloatingPointError (`--score-override lr=1e30`), MemoryError (`--score-epochs 999999999999`) and Ctrl-C tracebacks."
    import scoreextra.cli as cli
    def fail(a): raise exc
    monkeypatch.setattr(cli, "cmd_run", fail)
    monkeypatch.delenv("SCOREEXTRA_TRACEBACK", raising=False)
    err = io.StringIO()
    with contextlib.redirect_stderr(err): assert cli.main(["run", "--runs", str(tmp_path / "r")]) == code
    line = err.getvalue()
    assert line.count("\n") == 1 and line.startswith("scoreextra run: "), line
    assert (str(exc) in line) if str(exc) else "interrupted" in line, line
    monkeypatch.setenv("SCOREEXTRA_TRACEBACK", "1")
    with pytest.raises(type(exc)): cli.main(["run", "--runs", str(tmp_path / "r")])


def _started(runs:Path, timeout=180) -> bool:
    "Wait until a stage of the CLI under test is running (its meta.json says so)."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any('"running"' in m.read_text() for m in runs.glob("*/*/meta.json") if m.stat().st_size): return True
        time.sleep(0.2)
    return False


def _default_sigint():
    """In the child before exec: Ctrl-C as a terminal delivers it (a pytest-xdist worker ignores SIGINT, and an ignored
    signal stays ignored across exec: the CLI then rightly leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_end_in_one_line_and_the_stage_says_interrupted(tmp_path, sig, code):
    runs = tmp_path / "runs"
    p = subprocess.Popen([str(BIN / "scoreextra"), "run", "--score-epochs", "400", "--extrapolator", "knn",
                          "--no-ground-truth", "--runs", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=_default_sigint)
    try:
        assert _started(runs), "the stage never started"
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally: p.kill()
    assert p.returncode == code and err.count("\n") == 1 and "Traceback" not in err, (p.returncode, err[-2000:])
    assert "rerun resumes" in err
    metas = [m.read_text() for m in runs.glob("*/*/meta.json")]
    assert any('"interrupted"' in m for m in metas), metas


@pytest.mark.slow
def test_sigterm_under_papermill_is_one_line(tmp_path):
    "Was: the kernel's zmq traceback, papermill's 'Kernel died' and an unretrieved asyncio task on stderr."
    pytest.importorskip("papermill")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ndataset: digits\nscores: [du]\nseed_sizes: [0.2]\nseeds: [0]\nscore_epochs: 400\n")
    runs = tmp_path / "runs"
    p = subprocess.Popen([str(BIN / "scoreextra"), "sweep", str(cfg), "--executor", "papermill", "--runs", str(runs)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert _started(runs, timeout=120), "the stage never started"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally: p.kill()
    assert p.returncode == 143 and err.count("\n") == 1 and "Traceback" not in err, (p.returncode, err[-2000:])
    assert any('"interrupted"' in m.read_text() for m in runs.glob("*/*/meta.json"))


def test_main_called_in_process_puts_back_the_warning_format_and_signal_handlers(monkeypatch, tmp_path):
    "`main` sets one-line warnings and a SIGTERM handler for the command's lifetime only (a notebook or test calling it keeps its own)."
    import warnings
    import scoreextra.cli as cli
    seen = {}
    def cmd(a):
        seen["term"] = signal.getsignal(signal.SIGTERM)
        seen["warning"] = warnings.formatwarning("careful", UserWarning, "f.py", 1)
        raise ValueError("bad value")
    monkeypatch.setattr(cli, "cmd_run", cmd)
    monkeypatch.delenv("SCOREEXTRA_TRACEBACK", raising=False)
    fmt, term = warnings.formatwarning, signal.getsignal(signal.SIGTERM)
    with contextlib.redirect_stderr(io.StringIO()): assert cli.main(["run", "--runs", str(tmp_path / "r")]) == 2
    assert seen == {"term": cli._terminated, "warning": "scoreextra run: UserWarning: careful\n"}   # while it ran
    assert warnings.formatwarning is fmt and signal.getsignal(signal.SIGTERM) is term               # and after
