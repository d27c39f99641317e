"End-to-end unsupervised (TURTLE-DU) and adversarial-training sweeps on scikit-learn digits, resume, reports, bad configs."
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from scoreextra.core import load_json
from scoreextra.runfolder import RunFolder
from scoreextra.data import load_dataset
from scoreextra.metrics import pearson
from scoreextra.pipeline import ConfigError, expand_config, load_config, report, sweep, validate_config
from scoreextra.adversarial_stages import adv_data, report_adversarial
from scoreextra.unsupervised import report_unsupervised

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(log=lambda *a: None)
EMB = {"kind": "pca_whitened", "dim": 16, "standardize": True}
UNSUP = dict(paradigm="unsupervised", name="tiny_unsup", dataset="digits", embedding=EMB, seed_sizes=[0.2], seeds=[0, 1],
             turtle=dict(epochs=40, inner_lr=0.1, outer_lr=0.01), ground_truth={"seeds": [1000]},
             extrapolators=[{"name": "knn", "k": [5, 10]}, {"name": "gnn", "k": [5], "params": {"epochs": 3}}])
POOL = {"size": 400, "sampler": "stratified", "seed": 0}
ADV = dict(paradigm="adversarial", name="tiny_adv", dataset="digits", train_subset=POOL, seed_size=0.25, seeds=[0],
           ground_truth={"seeds": [1000]}, at=dict(attack=dict(eps=0.1, steps=2), epochs=4, batch_size=64),
           record=dict(window=3), extrapolator={"name": "knn", "k": 12, "params": {"weighted": False}},
           prune=dict(rate=0.25, methods=["random", "extrapolated", "ground_truth"], epochs=3), eval=dict(steps=5, n_test=120))


def _folders(root, stage):
    return [RunFolder(root, stage, load_json(p)["config"], create=False) for p in sorted((Path(root) / stage).glob("*/config.json"))]


def test_unsupervised_sweep_report_and_resume(tmp_path):
    n = len(load_dataset("digits"))
    s = sweep(UNSUP, runs_root=tmp_path / "runs", **QUIET)
    assert s["ran"] == s["total"] == len(expand_config(UNSUP)) == 1 + 3 + 2 * 3 and not s["failed"]
    gt = next(f for f in _folders(tmp_path / "runs", "turtle_score") if f.config["seed_size"] is None)
    np.testing.assert_array_equal(gt.load("seed_idx.npy"), np.arange(n))
    np.testing.assert_array_equal(gt.load("scores.npy"), gt.load("seed_scores.npy"))
    # TURTLE finds the digit classes without labels far above chance (~0.11 for 10 balanced clusters)
    assert gt.load_json("metrics.json")["cluster_acc"] > 0.5
    for f in _folders(tmp_path / "runs", "turtle_extrapolate"):
        sub = RunFolder(tmp_path / "runs", "turtle_score", f.config["score"], create=False)
        s_all, idx = f.load("scores.npy"), sub.load("seed_idx.npy")
        assert s_all.shape == (n,) and np.isfinite(s_all).all()
        np.testing.assert_array_equal(s_all[idx], sub.load("seed_scores.npy"))   # seeds keep their measured TURTLE-DU
    res = report(tmp_path / "runs", tmp_path / "rep")["unsupervised"]
    assert (tmp_path / "rep" / "table3_unsupervised.md").exists() and (tmp_path / "rep" / "table3_unsupervised.csv").exists()
    t3 = pd.read_csv(tmp_path / "rep" / "table3_unsupervised.csv")
    assert {"Pearson KNN", "Pearson GNN", "Spearman KNN", "Spearman GNN", "TURTLE acc full", "TURTLE acc subset"} <= set(t3.columns)
    byk = res["table3_by_k"]
    assert set(zip(byk.extrapolator, byk.k)) == {("knn", 5), ("knn", 10), ("gnn", 5)} and (byk.seeds == 2).all()
    # the reported correlation is Pearson on D_r against the full-data run, recomputed here from the files
    ext = res["unsupervised_extrapolations"]
    row = ext[(ext.extrapolator == "knn") & (ext.k == 5) & (ext.seed == 0)].iloc[0]
    f = RunFolder(tmp_path / "runs", "turtle_extrapolate", load_json(Path(row.path) / "config.json")["config"], create=False)
    rest = np.setdiff1d(np.arange(n), RunFolder(tmp_path / "runs", "turtle_score", f.config["score"], create=False).load("seed_idx.npy"))
    assert row.pearson == pytest.approx(pearson(f.load("scores.npy")[rest], gt.load("scores.npy")[rest]))
    again = sweep(UNSUP, runs_root=tmp_path / "runs", **QUIET)
    assert again["ran"] == 0 and again["done_before"] == again["total"]


def test_adversarial_sweep_report_and_resume(tmp_path):
    s = sweep(ADV, runs_root=tmp_path / "runs", **QUIET)
    assert s["ran"] == s["total"] == 2 + 1 + 3 and not s["failed"]
    pool_ds, pool = adv_data("digits", POOL)
    assert len(pool) == 400 and np.bincount(pool_ds.y).min() >= 38   # stratified: every class ~40
    gt = next(f for f in _folders(tmp_path / "runs", "adv_score") if f.config["seed_size"] is None)
    sub = next(f for f in _folders(tmp_path / "runs", "adv_score") if f.config["seed_size"] is not None)
    np.testing.assert_array_equal(sub.load("pool_idx.npy"), pool)
    assert len(sub.load("seed_scores.npy")) == 100 and sub.load("embeddings.npy").shape[0] == 400
    runs = {f.config["source"]["stage"]: f for f in _folders(tmp_path / "runs", "adv_prune_train")}
    assert set(runs) == {"random", "adv_extrapolate", "adv_score"}
    for f in runs.values():
        m = f.load_json("metrics.json")
        assert m["n_kept"] == 300 and m["n"] == 400 and m["n_attacked"] == 120
        assert 0 <= m["robust_acc"] <= m["clean_acc_attacked_subset"] <= 1
    # ground truth keeps exactly the 300 highest full-pool DU
    kept, du = runs["adv_score"].load("kept_idx.npy"), gt.load("scores.npy")
    assert du[kept].min() >= np.delete(du, kept).max()
    assert not np.array_equal(kept, runs["random"].load("kept_idx.npy"))
    res = report(tmp_path / "runs", tmp_path / "rep")["adversarial"]
    t4 = pd.read_csv(tmp_path / "rep" / "table4_adversarial.csv")
    assert list(t4.method.str.split(" ").str[0]) == ["random", "extrapolated", "ground"]
    assert t4.loc[1, "Pearson vs GT (D_r)"] != "—" and t4.loc[0, "scoring s"] == 0   # random pays for no scoring
    assert t4.loc[2, "scoring s"] > 0 and t4.loc[1, "extrapolation s"] >= 0
    assert "table4" in res and not (tmp_path / "rep" / "table3_unsupervised.md").exists()
    assert sweep(ADV, runs_root=tmp_path / "runs", **QUIET)["ran"] == 0


def test_reporters_stay_quiet_without_their_runs(tmp_path):
    (tmp_path / "runs").mkdir()
    assert report_unsupervised(tmp_path / "runs", tmp_path / "out") == {}
    assert report_adversarial(tmp_path / "runs", tmp_path / "out") == {}
    assert not (tmp_path / "out").exists()



def test_a_paradigm_of_your_own_is_one_registration(tmp_path):
    """Issue 29: a paradigm registered from outside runs through validate_config, expand_config, smoke_config and report,
    with no edit of experiments or reporting; unregistered, its configs are refused again."""
    from scoreextra.paradigms import PARADIGMS, Paradigm, register_paradigm
    from scoreextra.experiments import smoke_config
    from scoreextra.stages import Job, need
    def check(cfg, where): need(isinstance(cfg.get("n"), int) and cfg["n"] >= 1, lambda: f"n must be an int >= 1, got {cfg.get('n')!r}", where)
    def expand(cfg, where): return [Job("toy_values", {"n": cfg["n"], "seed": s}) for s in cfg["seeds"]]
    def smoke(cfg, data_dir): return {**cfg, "n": 2, "seeds": cfg["seeds"][:1], "data": str(data_dir)}
    def report_toy(runs_root, out_dir, **options): return {"read": str(runs_root), **options}
    cfg = dict(paradigm="toy", name="toy", n=5, seeds=[0, 1])
    register_paradigm(Paradigm("toy", check=check, expand=expand, smoke=smoke, report=report_toy))
    try:
        assert validate_config(cfg) is cfg
        with pytest.raises(ConfigError, match=r"x.yaml: n must be an int >= 1, got 0"): validate_config({**cfg, "n": 0}, "x.yaml")
        assert [j.config for j in expand_config(cfg)] == [{"n": 5, "seed": 0}, {"n": 5, "seed": 1}]
        small = smoke_config(cfg, tmp_path)
        assert (small["n"], small["seeds"], small["data"], small["name"]) == (2, [0], str(tmp_path), "toy_smoke")
        (tmp_path / "runs").mkdir()
        res = report(tmp_path / "runs", tmp_path / "rep", rate_for_figs=0.5)
        assert res["toy"] == {"read": str(tmp_path / "runs"), "rate_for_figs": 0.5} and "accuracy" in res   # supervised's at the top
    finally: del PARADIGMS["toy"]
    with pytest.raises(ConfigError, match=r"unknown paradigm 'toy'; expected one of \['adversarial', 'supervised', 'unsupervised'\]"):
        validate_config(cfg)


def test_a_config_may_name_the_default_paradigm():
    "`paradigm: supervised` is what a config without the key means: the same jobs."
    base = dict(dataset="digits", scores=["du"], seed_sizes=[0.2], seeds=[0], extrapolators=[{"name": "knn", "k": [5]}])
    assert [j.key for j in expand_config({**base, "paradigm": "supervised"})] == [j.key for j in expand_config(base)]


@pytest.mark.parametrize("change, message", [
    ({"embeding": EMB}, "unknown key(s) ['embeding']"),
    ({"embedding": {"kind": "dino"}}, "kind one of"),
    ({"turtle": {"epochs": 5}}, "must be an int >= 11, got 5"),
    ({"turtle": {"outer_lr": -1}}, "turtle outer_lr must be > 0, got -1"),
    ({"seed_sizes": [1.5]}, "seed_size must be a fraction in (0, 1)"),
    ({"extrapolators": [{"name": "knn_label", "k": [5]}]}, "extrapolator 'knn_label' needs labels"),
    ({"extrapolators": [{"name": "svr"}]}, "extrapolator {'name': 'svr'}"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
])
def test_bad_unsupervised_config_names_key_and_value(change, message):
    with pytest.raises(ConfigError) as e: validate_config({**UNSUP, **change}, "tiny.yaml")
    assert message in str(e.value) and str(e.value).startswith("tiny.yaml: ")


@pytest.mark.parametrize("change, message", [
    ({"at": {"method": "fgsm"}}, "method must be one of ['trades', 'pgd'], got 'fgsm'"),
    ({"at": {"attack": {"eps": -0.1}}}, "eps must be a finite number >= 0, got -0.1"),
    ({"at": {"epochs": 4}, "record": {"window": 10}}, "at epochs must be >= record window + 1 = 11"),
    ({"prune": {"rate": 1.2}}, "prune_rate must be in [0.0, 1.0), got 1.2"),
    ({"prune": {"rate": 0.25, "methods": ["zcore"]}}, "unknown method 'zcore'"),
    ({"train_subset": {"size": 0}}, "train_subset size must be a fraction in (0, 1) or an int count >= 1, got 0"),
    ({"eval": {"stepz": 3}}, "eval: unknown key(s) ['stepz']"),
    ({"seeds": "0"}, "seeds must be a non-empty list"),
])
def test_bad_adversarial_config_names_key_and_value(change, message):
    with pytest.raises(ConfigError) as e: validate_config({**ADV, **change}, "tiny.yaml")
    assert message in str(e.value)


def test_missing_key_and_yaml_and_cli(tmp_path, capsys):
    cfg = {k: v for k, v in ADV.items() if k != "at"}
    with pytest.raises(ConfigError, match="missing key 'at'"): validate_config(cfg)
    bad = tmp_path / "bad.yaml"; bad.write_text(yaml.safe_dump({**UNSUP, "turtle": {"epochs": 5}}))
    with pytest.raises(ConfigError, match="bad.yaml: turtle epochs"): load_config(bad)
    from scoreextra.cli import main
    assert main(["sweep", str(bad)]) == 2
    assert "turtle epochs (DU needs window + 1) must be an int >= 11, got 5" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["fashion_mnist_unsupervised", "cifar10_unsupervised", "fashion_mnist_adversarial",
                                  "cifar10_adversarial", "synthetic_cifar10_adversarial"])
def test_shipped_configs_expand(name):
    cfg = load_config(ROOT / "experiments" / "configs" / f"{name}.yaml")
    jobs = expand_config(cfg)
    assert len({j.key for j in jobs}) == len(jobs) and cfg["runs_root"].endswith(name)
    if cfg["paradigm"] == "unsupervised":   # 1 embedding + full runs + 6 subset runs × 6 extrapolations
        assert [j.stage for j in jobs].count("turtle_extrapolate") == 36
    else:
        assert [j.stage for j in jobs].count("adv_prune_train") == len(cfg["prune"].get("seeds", cfg["seeds"])) * len(cfg["prune"]["methods"])


@pytest.mark.slow   # ~25 s: three papermill kernels
def test_papermill_templates_run_the_paradigm_stages(tmp_path):
    pytest.importorskip("papermill")
    cfg = {**UNSUP, "seeds": [0], "ground_truth": {"seeds": []}, "extrapolators": [{"name": "knn", "k": [5]}]}
    s = sweep(cfg, runs_root=tmp_path, executor="papermill", **QUIET)
    assert s["ran"] == s["total"] == 3 and not s["failed"]
    assert len(list(tmp_path.glob("turtle_*/*/notebook.ipynb"))) == 3


def _paradigm_configs():
    "One valid config of every paradigm stage, built by its builder."
    from scoreextra.adversarial_stages import adv_extrapolate_config, adv_prune_config, adv_score_config
    from scoreextra.unsupervised import embed_config, turtle_extrapolate_config, turtle_score_config
    sc = turtle_score_config("digits", EMB, 0.2, 0)
    asc = adv_score_config("digits", 0.25, 0, train_subset=POOL, at=ADV["at"], record=dict(window=3))
    return {"turtle_embed": embed_config("digits", EMB), "turtle_score": sc, "turtle_extrapolate": turtle_extrapolate_config(sc, "knn", 5),
            "adv_score": asc, "adv_extrapolate": adv_extrapolate_config(asc),
            "adv_prune_train": adv_prune_config("adv_extrapolate", adv_extrapolate_config(asc), 0.25, dataset="digits",
                                                train_subset=POOL, at=asc["at"])}


def test_every_paradigm_stage_declares_its_config_type():
    from scoreextra.stages import STAGES
    for stage, cfg in _paradigm_configs().items():
        typ = STAGES.get(stage).config
        assert typ is not None and typ.__module__ == STAGES.get(stage).module, stage
        assert typ.from_dict(cfg).to_dict() == cfg, stage


def _bad(cfgs):
    "(stage, hand-written config with one bad value, the message of the module owning that value)."
    sc, asc, pc = cfgs["turtle_score"], cfgs["adv_score"], cfgs["adv_prune_train"]
    return [("turtle_embed", {**cfgs["turtle_embed"], "embedding": {"kind": "dinov3"}}, "kind one of"),
            ("turtle_score", {**sc, "seed_size": 2.7}, "seed_size"),
            ("turtle_score", {**sc, "sampler": "stratified"}, "no labels"),
            ("turtle_score", {**sc, "turtle": {**sc["turtle"], "epochs": 5}}, "epochs (DU needs window + 1) must be an int >= 11"),
            ("turtle_extrapolate", {**cfgs["turtle_extrapolate"], "k": 0}, "k must be"),
            ("turtle_extrapolate", {**cfgs["turtle_extrapolate"], "extrapolator": "knn_label"}, "needs labels"),
            ("turtle_extrapolate", {**cfgs["turtle_extrapolate"], "score": {**sc, "seed_size": True}}, "seed_size"),
            ("adv_score", {**asc, "at": {**asc["at"], "method": "fgsm"}}, "method must be one of"),
            ("adv_score", {**asc, "record": {**asc["record"], "window": 10}}, "record window + 1 = 11"),
            ("adv_score", {**asc, "train_subset": {"size": 1.5}}, "train_subset size must be"),
            ("adv_extrapolate", {**cfgs["adv_extrapolate"], "score": {**asc, "seed_size": None, "sampler": None}}, "needs a subset"),
            ("adv_prune_train", {**pc, "prune_rate": 1.0}, "prune_rate must be in [0.0, 1.0)"),
            ("adv_prune_train", {**pc, "source": {"stage": "adv_score", "config": asc}}, "must be the full-pool run"),
            ("adv_prune_train", {**pc, "eval": {"steps": 0}}, "steps")]


@pytest.mark.parametrize("i", range(14))
def test_run_stage_refuses_a_bad_paradigm_config_before_any_folder(tmp_path, i):
    from scoreextra.stages import run_stage
    stage, cfg, message = _bad(_paradigm_configs())[i]
    with pytest.raises((ValueError, TypeError, KeyError)) as e: run_stage(stage, cfg, tmp_path / "runs", log=lambda *a: None)
    assert message in str(e.value), (stage, str(e.value))
    assert not (tmp_path / "runs").exists()
