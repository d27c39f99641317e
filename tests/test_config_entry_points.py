"""Every entry point refuses the same bad `seed_size` / `k` with the same message -- the one of the module that owns the
value (`sampling.check_size`, `faiss_search.check_k`) -- before anything is trained or any run folder is written:
Python `run()`, `scoreextra run`, a YAML sweep, and a papermill run of the one stage template."""
import yaml
import pytest

from scoreextra.cli import main
from scoreextra.faiss_search import check_k
from scoreextra.pipeline import extrapolate_config, run, subset_config, sweep
from scoreextra.sampling import check_size
from scoreextra.stages import templates_dir

BAD = [("seed_size", v) for v in (0, -1, 1.5, True, "x", 1.0)] + [("k", v) for v in (0, -5, 2.5, "x")]
GOOD_SUBSET = dict(dataset="digits", score="du", seed_size=0.2, seed=0, epochs=1)


def owner_message(param, value) -> str:
    "What the owning module says about `value`."
    with pytest.raises((TypeError, ValueError)) as e:
        check_size(value, "seed_size") if param == "seed_size" else check_k(value)
    return str(e.value)


def via_run(param, value, root, capsys):
    run("digits", "du", extrapolators=("knn",), prune_rates=(0.5,), baselines=(), runs_root=root, **{param: value})


def via_cli(param, value, root, capsys):
    flag = "--seed-size" if param == "seed_size" else "--k"
    rc = main(["run", flag, str(value), "--extrapolator", "knn", "--prune-rates", "0.5", "--runs", str(root)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    raise ValueError(err)


def via_sweep(param, value, root, capsys):
    cfg = dict(name="bad", dataset="digits", scores=["du"], seed_sizes=[0.2], seeds=[0], score_epochs=1,
               extrapolators=[{"name": "knn", "k": [10]}], prune={"rates": [0.5]})
    if param == "seed_size": cfg["seed_sizes"] = [value]
    else: cfg["extrapolators"][0]["k"] = [value]
    path = root.parent / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert yaml.safe_load(path.read_text())["seed_sizes" if param == "seed_size" else "extrapolators"] == \
        cfg["seed_sizes" if param == "seed_size" else "extrapolators"]   # the file holds the very value (True, 1.0, "x")
    sweep(path, runs_root=root, log=lambda *a: None)


def via_papermill(param, value, root, capsys):
    import papermill as pm
    sub = subset_config(**GOOD_SUBSET)
    stage, cfg = (("score_subset", {**sub, "seed_size": value}) if param == "seed_size"
                  else ("extrapolate", {**extrapolate_config(sub, "knn"), "k": value}))
    pm.execute_notebook(str(templates_dir() / "stage.ipynb"), str(root.parent / "out.ipynb"), progress_bar=False,
                        kernel_name="python3", parameters=dict(stage=stage, module="scoreextra.supervised", config=cfg,
                                                               runs_root=str(root)))


ENTRY_POINTS = {"run": via_run, "cli": via_cli, "sweep": via_sweep, "papermill": via_papermill}
# A papermill kernel takes seconds to start: it gets one bad value per parameter (the template reaches the same
# owner check for any value); the in-process entry points get every value.
CASES = [(e, p, v) for e in ENTRY_POINTS for p, v in BAD
         if e != "papermill" or (p, v) in {("seed_size", 1.5), ("k", "x")}]


@pytest.mark.parametrize("entry, param, value", CASES, ids=[f"{e}-{p}={v!r}" for e, p, v in CASES])
def test_bad_value_same_message_from_every_entry_point(entry, param, value, tmp_path, capsys):
    msg = owner_message(param, value)
    root = tmp_path / "runs"
    with pytest.raises(Exception) as e:
        ENTRY_POINTS[entry](param, value, root, capsys)
    assert msg in str(e.value), f"{entry}: expected {msg!r} in {str(e.value)[-400:]!r}"
    assert not root.exists(), f"{entry} wrote run folders before refusing {param}={value!r}"


def test_owner_messages_tell_the_values_apart():
    "The messages name the value, so 'the same message' is not trivially true."
    msgs = {(p, repr(v)): owner_message(p, v) for p, v in BAD}
    assert len(set(msgs.values())) == len(msgs)
    assert "ambiguous" in msgs["seed_size", "1.0"] and msgs["seed_size", "True"].endswith("got True")
    assert msgs["k", "2.5"] == "k must be an int, got 2.5"


def test_the_cli_reads_values_as_a_config_file_does():
    "`--seed-size 200` is the count 200 and `0.2` the fraction, as in YAML; `2.7` is no longer truncated to 2."
    from scoreextra.cli import build_parser
    p = build_parser()
    assert p.parse_args(["run", "--seed-size", "200"]).seed_size == 200
    assert p.parse_args(["run", "--seed-size", "0.2"]).seed_size == 0.2
    assert p.parse_args(["run", "--k", "7", "--extrapolator", "gnn:3"]).k == 7
    with pytest.raises(SystemExit): p.parse_args(["run", "--seed-size", "2.7"])
