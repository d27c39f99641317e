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
