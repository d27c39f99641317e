"""Issue 25.1: the defaults are the best measured and live in one place. Fashion-MNIST's default final training is
the evidence's converged recipe: a pruned training built from the defaults alone is the very config the evidence
sweep ran (same model, epochs, batch size, recipe), and the evidence YAML names that recipe instead of copying it."""
import json
from pathlib import Path

import yaml

from scoreextra.recipes import DATASET_DEFAULTS, FASHION_MNIST_FINAL, final_training
from scoreextra.supervised import ground_truth_config, prune_config

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("model", "model_kw", "epochs", "batch_size", "recipe")


def test_fashion_mnist_default_final_training_is_the_evidence_recipe():
    evid = [json.loads(p.read_text())["config"] for p in sorted((ROOT / "runs/fm_evidence/prune_train").glob("*/config.json"))]
    fixed = [c for c in evid if c.get("budget", "epochs") == "epochs" and c["epochs"] == 10]
    assert len(fixed) > 100
    gt = ground_truth_config("fashion_mnist", "du", 1000, epochs=20, batch_size=256, model="cnn")
    ours = prune_config("ground_truth", gt, 0.5, 0)                      # nothing but the defaults
    for c in fixed: assert {k: c[k] for k in KEYS} == {k: ours[k] for k in KEYS}
    assert ours["model"] == "convnet" and ours["recipe"]["lr"] == 4e-3 and ours["recipe"]["augment"] == {"pad": 0, "flip": True}


def test_evidence_configs_name_the_recipe_instead_of_copying_it():
    for name in ("fashion_mnist_evidence", "fashion_mnist_evidence_budget", "fashion_mnist_evidence_selection"):
        cfg = yaml.safe_load((ROOT / f"experiments/configs/{name}.yaml").read_text())
        assert cfg["final"] == "fashion_mnist" and not {"final_model", "final_epochs", "final_recipe"} & set(cfg), name


def test_every_default_says_where_it_comes_from_and_a_chosen_model_drops_the_datasets_recipe():
    assert all(d["final_from"] for d in DATASET_DEFAULTS.values())
    assert final_training("fashion_mnist")["epochs"] == FASHION_MNIST_FINAL["final_epochs"] == 10
    gt = ground_truth_config("fashion_mnist", "du", 1000, epochs=20, batch_size=256, model="cnn")
    assert prune_config("ground_truth", gt, 0.5, 0, model="cnn")["recipe"]["lr"] == 1e-3   # convnet's lr is not cnn's


def test_run_defaults_reuse_the_evidence_runs():
    """Issue 25 (done when): `scoreextra run --dataset fashion_mnist --seeds 0 1 2` with every other setting at its default
    builds the evidence's measured jobs: the same subset scorings, full-data scorings, kNN extrapolations (seeds-first
    merge, the measured default), random baselines and no-pruning trainings -- so it reuses runs/fm_evidence."""
    import inspect
    from scoreextra.experiments import expand_config, load_config, validate_config
    from scoreextra.pipeline import run, run_config
    d = {k: p.default for k, p in inspect.signature(run).parameters.items() if p.default is not inspect.Parameter.empty}
    keys = inspect.signature(run_config).parameters.keys() - {"dataset", "score", "seed", "seeds", "prune_rates"}
    cfg = run_config("fashion_mnist", d["score"], seeds=[0, 1, 2], prune_rates=[0.5, 0.9], **{k: d[k] for k in keys})
    ours = expand_config(validate_config(cfg, "run"))
    evid = {j.key for j in expand_config(load_config(ROOT / "experiments/configs/fashion_mnist_evidence.yaml"))}
    auto = [j for j in ours if j.stage == "prune_train" and (j.config.get("selection") or {}).get("strategy") == "auto"]
    rest = [j for j in ours if j not in auto]
    assert {j.stage for j in rest} == {"score_subset", "ground_truth", "extrapolate", "baseline", "prune_train"}
    assert [j for j in rest if j.key not in evid] == []
    ext = [j.config for j in rest if j.stage == "extrapolate"]
    assert len(ext) == 3 and {(c["extrapolator"], c["merge"], c["shrink"]) for c in ext} == {("knn", "shrink", 0.25)}
    # what `auto` prunes by: every source is one of the evidence's
    assert len(auto) == 12 and {json.dumps(j.config["source"], sort_keys=True) for j in auto} <= {
        json.dumps({"stage": j.stage, "config": j.config}, sort_keys=True) for j in expand_config(load_config(
            ROOT / "experiments/configs/fashion_mnist_evidence.yaml")) if j.stage in ("extrapolate", "ground_truth", "baseline")}
