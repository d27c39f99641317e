"""Security (issue 27): a file planted in a runs root is data, never code. A checkpoint that asks to import
anything besides tensors, numpy arrays and plain Python data is refused, naming the file, before it runs."""
import contextlib, io, os, re, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scoreextra.core import load_torch, save_torch
from scoreextra.data import load_dataset
from scoreextra.models import get_model
from scoreextra.train import fit


class Payload:
    "Unpickling it calls `fn(*args)`: the stand-in for the code a planted checkpoint would run."
    def __init__(self, fn, *args): self.fn, self.args = fn, args
    def __reduce__(self): return self.fn, self.args


def _payloads(marker):
    return {"os.system": Payload(os.system, f"touch {marker}"),
            "exec": Payload(exec, f"open({str(marker)!r}, 'w').close()"),
            "a class of the caller": Payload(Path.touch, Path(marker))}


@pytest.fixture(scope="module")
def digits(): return load_dataset("digits", "train")


@pytest.mark.parametrize("kind", ["os.system", "exec", "a class of the caller"])
@pytest.mark.parametrize("sidecar", [False, True], ids=["no sha256", "sha256 recomputed by the planter"])
def test_a_planted_checkpoint_never_runs_on_resume(digits, tmp_path, kind, sidecar):
    marker = tmp_path / "pwned"
    ck = tmp_path / "ckpt"
    fake = {"format": 1, "epochs_done": 1, "rng": _payloads(marker)[kind]}
    if sidecar: save_torch(ck / "last.pt", fake, checksum=True)
    else: ck.mkdir(); torch.save(fake, ck / "last.pt")
    model = get_model("cnn", digits.num_classes, digits.in_shape, seed=0)
    with pytest.raises(ValueError) as e:
        fit(model, digits, epochs=1, batch_size=256, device="cpu", progress=False, ckpt_dir=ck)
    assert not marker.exists(), f"the {kind} payload ran"
    assert f"{ck / 'last.pt'}: refused" in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert (ck / "last.pt").exists()                 # left where it was, for its owner to look at


def test_load_torch_reads_tensors_numpy_and_plain_data_and_refuses_code(tmp_path):
    ok = {"w": torch.arange(3.), "a": np.arange(4, dtype=np.uint32), "s": np.float64(0.5),
          "rng": np.random.get_state(), "py": ((1, 2), [3.0, None], {"k": "v"}, {4, 5}, True)}
    save_torch(tmp_path / "ok.pt", ok)
    back = load_torch(tmp_path / "ok.pt")
    assert torch.equal(back["w"], ok["w"]) and back["a"].dtype == np.uint32 and back["s"] == 0.5
    assert back["rng"][0] == "MT19937" and np.array_equal(back["rng"][1], ok["rng"][1])
    assert back["py"] == ok["py"]
    torch.save({"x": Payload(exec, f"open({str(tmp_path / 'pwned')!r}, 'w').close()")}, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as e: load_torch(tmp_path / "bad.pt")
    assert not (tmp_path / "pwned").exists(), "the payload ran"
    msg = str(e.value)
    assert f"{tmp_path / 'bad.pt'}: refused" in msg and "asks to import exec" in msg, msg


# ---------------------------------------------------------------- YAML configs: alias bombs, deep nesting, duplicates
_CFG = "dataset: digits\nscores: [du]\nseed_sizes: [0.2]\n"


def _bomb(levels:int) -> str:
    "A config whose `seeds` is an alias bomb of 10**levels values (`_CFG` plus anchors under `description`)."
    anchors = ["  - &a0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    anchors += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels - 1)]
    return _CFG + "description:\n" + "\n".join(anchors) + f"\nseeds: [{', '.join([f'*a{levels - 2}'] * 10)}]\n"


REFUSED = [
    ("alias bomb of 10^6", _bomb(6), "line 9: more than 100,000 values once its aliases are expanded"),
    ("3,000 nested [", _CFG + "seeds: " + "[" * 3000 + "0" + "]" * 3000 + "\n", "line 4: nested deeper than 50"),
    ("deep through aliases", _CFG + "description:\n  - &d " + "[" * 40 + "0" + "]" * 40
     + "\nseeds: [[[[[[[[[[[[*d]]]]]]]]]]]]\n", "nested deeper than 50 once its aliases are expanded"),
    ("duplicate key", _CFG + "seeds: [0]\nscore_epochs: 2\nseeds: [1]\n", "line 6: duplicate key 'seeds' (first at line 4)"),
    ("duplicate nested key", _CFG + "seeds: [0]\nprune:\n  rates: [0.5]\n  rates: [0.9]\n",
     "line 7: duplicate key 'rates' (first at line 6)"),
    ("recursive alias", _CFG + "seeds: &s [0, *s]\n", "line 4: a recursive alias"),
]


@pytest.mark.parametrize("name,text,msg", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_yaml_config_that_could_blow_up_is_refused_in_one_line(tmp_path, name, text, msg):
    "Was: a bomb expanded while a message was formatted, 3,000 `[` a RecursionError, a duplicate key silently won."
    from scoreextra.cli import main
    from scoreextra.pipeline import ConfigError, load_config
    p = tmp_path / "c.yaml"; p.write_text(text)
    with pytest.raises(ConfigError) as e: load_config(p)
    assert str(e.value).startswith(f"{p}: ") and msg in str(e.value) and len(str(e.value)) < 200, str(e.value)[:300]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", str(p), "--runs", str(tmp_path / "runs")]) == 2
    assert err.getvalue().count("\n") == 1 and msg in err.getvalue(), err.getvalue()[:300]
    assert not (tmp_path / "runs").exists()


def test_a_billion_laughs_is_refused_under_a_memory_cap(tmp_path):
    "Was: a 570-byte config of 10^9 values took all memory (a MemoryError traceback under a 3 GB cap)."
    p = tmp_path / "laughs.yaml"; p.write_text(_bomb(9))
    assert p.stat().st_size < 1000
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from scoreextra.cli import main; sys.exit(main(['sweep', sys.argv[1], '--runs', sys.argv[2]]))")
    r = subprocess.run([sys.executable, "-c", code, str(p), str(tmp_path / "runs")], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-500:]
    assert f"{p}: line 9: more than 100,000 values" in r.stderr


def test_config_messages_are_built_only_when_a_check_fails():
    "Was: every check formatted its message (`{cfg[key]!r}`) before testing its condition."
    from scoreextra.pipeline import ConfigError, validate_config
    from scoreextra.stages import need

    class Loud(list):
        def __repr__(self): raise AssertionError("a message was built for a check that passed")
    validate_config({"dataset": "digits", "scores": Loud(["du"]), "seed_sizes": Loud([0.2]), "seeds": Loud([0]),
                     "prune": {"rates": Loud([0.5]), "seeds": Loud([0])}})
    need(True, lambda: 1 / 0, "c.yaml")
    with pytest.raises(ConfigError, match=r"^c\.yaml: a lazy message$"): need(False, lambda: "a lazy message", "c.yaml")


# ---------------------------------------------------------------- writes stay inside the runs root (issue 27.9)
@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped_abs", "a/../../escaped", ".."])
def test_a_config_name_never_makes_a_sweep_write_outside_runs(tmp_path, monkeypatch, name):
    "Was: with no runs_root, `name: ../../x` or an absolute name made runs/<name> a folder outside runs/."
    from scoreextra.cli import main
    from scoreextra.pipeline import ConfigError, sweep
    work = tmp_path / "a" / "b"; work.mkdir(parents=True); monkeypatch.chdir(work)
    cfg = {"name": name, "dataset": "digits", "scores": ["du"], "seed_sizes": [0.2], "seeds": [0], "score_epochs": 2}
    with pytest.raises(ConfigError, match=r"name .*plain folder name"): sweep(cfg, log=lambda m: None)
    (work / "c.yaml").write_text(__import__("yaml").safe_dump(cfg))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", "c.yaml"]) == 2
    assert err.getvalue().count("\n") == 1 and "name" in err.getvalue(), err.getvalue()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "c.yaml"]     # nothing written anywhere
    assert not Path("/tmp/escaped_abs").exists()


@pytest.mark.parametrize("key,value", [("name", 5), ("name", ["x"]), ("runs_root", 5), ("runs_root", {"a": 1}),
                                       ("report_dir", [1])])
def test_non_string_names_and_roots_are_refused_naming_the_key(key, value):
    from scoreextra.pipeline import ConfigError, validate_config
    cfg = {"dataset": "digits", "scores": ["du"], "seed_sizes": [0.2], "seeds": [0], key: value}
    with pytest.raises(ConfigError, match=rf"^c\.yaml: {key} must be a string, got {re.escape(repr(value))}$"):
        validate_config(cfg, "c.yaml")


def test_a_ckpt_symlink_in_a_run_folder_never_takes_a_write_outside(tmp_path):
    "Was: a `ckpt` link to a folder elsewhere made training write last.pt there, and leave it."
    from scoreextra.runfolder import RunFolder
    from scoreextra.stages import run_stage
    from scoreextra.supervised import subset_config
    cfg = subset_config("digits", "du", 0.1, 0, epochs=3, overrides={"window": 2})
    root, outside = tmp_path / "runs", tmp_path / "outside"
    outside.mkdir()
    f = RunFolder(root, "score_subset", cfg)
    os.symlink(outside, f.path / "ckpt")
    with pytest.warns(UserWarning, match=r"ckpt is a symbolic link .*removed"):
        g = run_stage("score_subset", cfg, root)
    assert g.done and list(outside.iterdir()) == []
    assert not g.file("ckpt").exists() and not g.file("ckpt").is_symlink()


@pytest.mark.parametrize("what", ["stage folder", "run folder"])
def test_a_run_folder_linked_outside_the_root_is_refused(tmp_path, what):
    from scoreextra.core import config_hash
    from scoreextra.runfolder import RunFolder, UnsafePath
    root, outside = tmp_path / "runs", tmp_path / "outside"
    outside.mkdir(); (root / "extrapolate").mkdir(parents=True)
    link = root / "extrapolate" if what == "stage folder" else root / "extrapolate" / config_hash({"k": 1})
    if what == "stage folder": (root / "extrapolate").rmdir()
    os.symlink(outside, link)
    with pytest.raises(UnsafePath) as e: RunFolder(root, "extrapolate", {"k": 1})
    assert "outside the runs root" in str(e.value) and str(link) in str(e.value) and "\n" not in str(e.value)
    assert list(outside.iterdir()) == []
    inside = root / "elsewhere"; inside.mkdir(); link.unlink(); os.symlink(inside, link)   # a link inside the root is fine
    assert RunFolder(root, "extrapolate", {"k": 1}).path.exists()


# ---------------------------------------------------------------- shared filesystems follow the umask (issue 27.11)
@pytest.mark.parametrize("umask,mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_artefacts_and_locks_follow_the_umask(tmp_path, umask, mode):
    "Was: every artefact 0600 whatever the umask, so group members could not read, report on or resume the runs."
    from scoreextra.core import save_torch
    from scoreextra.runfolder import RunFolder
    old = os.umask(umask)
    try:
        f = RunFolder(tmp_path, "extrapolate", {"k": 1})
        assert f.try_lock()
        with f.phase("extrapolation"): f.save("scores.npy", np.arange(3.)); f.save_json("metrics.json", {"a": 1})
        save_torch(f.file("ckpt") / "last.pt", {"w": torch.ones(2)}, checksum=True)
        modes = {p.name: p.stat().st_mode & 0o777 for p in [*f.path.iterdir(), *(f.path / "ckpt").iterdir()] if p.is_file()}
        f.finish(); f.unlock()
    finally: os.umask(old)
    assert set(modes) == {"config.json", "meta.json", "scores.npy", "metrics.json", "lock", "last.pt", "last.pt.sha256"}
    assert modes == dict.fromkeys(modes, mode), {k: oct(v) for k, v in modes.items()}


# ---------------------------------------------------------------- property test: generated YAML configs
_BASE = {"name": "p", "dataset": "digits", "scores": ["du"], "seed_sizes": [0.2], "seeds": [0], "score_epochs": 11,
         "extrapolators": [{"name": "knn", "k": [5]}], "prune": {"rates": [0.5], "extrapolators": [{"name": "knn", "k": 5}]}}
_ODD = [None, -1, 0, 1.5, "x", [], {}, [[]], {"a": 1}, True, 1e308, "../x", [0, 0, 0], "/abs", float("nan"), 2**70]


def _nested(depth:int, kind:str) -> str:
    return ("[" * depth + "0" + "]" * depth) if kind == "[" else ("{a: " * depth + "0" + "}" * depth)


def _generated(rng) -> str:
    "One YAML config: valid, or broken in one of the ways a hostile or careless author would try."
    import yaml
    kind = rng.choice(["odd value", "odd nested value", "deep", "bomb", "aliases", "merge key", "duplicate", "junk"])
    cfg, key = json_copy(_BASE), rng.choice(sorted(_BASE) + ["runs_root", "report_dir", "nosuch"])
    if kind == "odd value": cfg[key] = rng.choice(_ODD); return yaml.safe_dump(cfg)
    if kind == "odd nested value":
        cfg["prune"][rng.choice(["rates", "seeds", "extrapolators", "baselines", "selections"])] = rng.choice(_ODD)
        return yaml.safe_dump(cfg)
    text = yaml.safe_dump({k: v for k, v in cfg.items() if k != key})
    if kind == "deep": return text + f"{key}: {_nested(rng.choice([5, 30, 49, 50, 51, 200, 3000]), rng.choice('[{'))}\n"
    if kind == "bomb": return _bomb(rng.randint(3, 8)).replace("seeds:", f"{key}:" if key != "description" else "seeds:")
    if kind == "aliases":   # anchors and aliases used as a tidy author would: valid, read like their expansion
        return text.replace("seeds:\n- 0", "seeds: &s [0, 1]") + "prune: {rates: &r [0.5], seeds: *s}\n" * (key == "prune") \
            + ("" if key == "prune" else "")
    if kind == "merge key":
        return (yaml.safe_dump({k: v for k, v in cfg.items() if k != "extrapolators"})
                + "extrapolators:\n  - &e {name: knn, k: [5]}\n  - {<<: *e, k: [7]}\n")
    if kind == "duplicate": return text + f"{rng.choice(sorted(_BASE))}: [1]\n"
    return rng.choice(["", ":", "- - -", "{", "&a [*a]", "!!python/object/apply:os.system ['true']", "\x00", "a: !!binary |\n  AAAA\n"])


def json_copy(d): return __import__("json").loads(__import__("json").dumps(d))


def test_generated_yaml_configs_are_refused_in_one_line_or_run(tmp_path):
    "Issue 11's property test on YAML (issue 27): aliases, merge keys, deep nesting, bombs, duplicates, odd values, junk."
    import random
    from scoreextra.cli import main
    rng, seen = random.Random(27), {}
    for i in range(120):
        p = tmp_path / f"c{i}.yaml"; p.write_text(_generated(rng))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["sweep", str(p), "--runs", str(tmp_path / "runs"), "--limit", "0"])
        msg = err.getvalue()
        assert code in (0, 2), (p.read_text()[:300], code, msg[-500:])
        assert (msg == "") if code == 0 else (msg.count("\n") == 1 and msg.startswith("scoreextra sweep: error: ")
                                              and str(p) in msg and len(msg) < 1000), (p.read_text()[:300], msg[-500:])
        seen[code] = seen.get(code, 0) + 1
    assert seen.get(0, 0) >= 10 and seen.get(2, 0) >= 60, seen          # both outcomes were exercised
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.npy"))


def test_the_docs_say_what_a_runs_root_from_someone_else_can_and_cannot_do():
    import json
    nb = json.loads((Path(__file__).resolve().parents[1] / "nbs" / "12_stages.ipynb").read_text())
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    sec = md[md.index("## Security: a runs root or a config from someone else"):]
    for fact in ("weights_only=True", "allow_pickle=False", "module:function", "runs_root", "umask",
                 "written before the records", "SCOREEXTRA_LOCK_TIMEOUT", "recomputed on the next run"):
        assert fact in sec, fact
