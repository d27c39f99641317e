"""Existing run folders stay valid: every experiment config expands to the same (stage, config hash) jobs as when
tests/config_hashes.json was written (tools/config_hashes.py, before the upper floors were refactored), and every
committed run folder of the evidence sweep is found again by expanding its configs."""
import hashlib, json
from pathlib import Path

import pytest

from scoreextra.core import config_hash, load_json
from scoreextra.pipeline import expand_config, load_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "config_hashes.json").read_text())
CONFIGS = ROOT / "experiments" / "configs"
EVIDENCE = ("fashion_mnist_evidence.yaml", "fashion_mnist_evidence_budget.yaml", "fashion_mnist_evidence_selection.yaml",
            "size_regimes_60k.yaml")   # configs whose folders are committed under runs/fm_evidence


def _jobs(path) -> list:
    return sorted([j.stage, config_hash(j.config)] for j in expand_config(load_config(path)))


@pytest.mark.parametrize("name", sorted(FIXTURE["configs"]))
def test_config_expands_to_the_recorded_hashes(name):
    "A config edited or removed since the fixture was written fails (never skips) and names the tool that rewrites it."
    path, rec = CONFIGS / name, FIXTURE["configs"][name]
    assert path.exists(), f"{name} was removed: rerun tools/config_hashes.py"
    jobs = _jobs(path)
    if hashlib.sha1(path.read_bytes()).hexdigest() != rec["yaml_sha"]:
        gone = [j for j in rec["jobs"] if j not in jobs]
        pytest.fail(f"{name} was edited since tests/config_hashes.json was written: rerun tools/config_hashes.py"
                    + (f" if you mean to drop the {len(gone)} recorded jobs it no longer expands to, e.g. {gone[0]}"
                       if gone else " (every recorded job keeps its hash)"))
    assert jobs == rec["jobs"]


def test_every_shipped_config_is_in_the_fixture():
    assert {p.name for p in CONFIGS.glob("*.yaml")} <= set(FIXTURE["configs"]) | set(EVIDENCE)


def test_committed_run_folders_hash_to_their_names_and_are_expanded_again():
    folders = sorted((ROOT / "runs" / "fm_evidence").glob("*/*/config.json"))
    if not folders: pytest.skip("no run folders of the evidence sweep here")
    expected = set()
    for name in EVIDENCE: expected |= {tuple(j) for j in _jobs(CONFIGS / name)}
    for p in folders:
        cfg = load_json(p)["config"]
        assert config_hash(cfg) == p.parent.name, p
        assert (p.parent.parent.name, p.parent.name) in expected, f"{p} is no job of the evidence configs"


@pytest.mark.parametrize("i", range(len(FIXTURE["run"])))
def test_run_builds_the_recorded_jobs(i):
    "`run()` expands its arguments into the jobs it started before the refactor (plus the subset runs they contain)."
    from scoreextra.pipeline import run_config
    kw = dict(seed_size=0.2, extrapolators=("knn", "gnn"), k=10, prune_rates=(0.1, 0.3, 0.5, 0.7, 0.9), seed=0, ground_truth=True,
              baselines=("random",), sampler="random", merge="raw", where="train", schedule="steps_per_epoch", model=None,
              score_epochs=None, final_epochs=None, batch_size=None, selection="auto")   # run()'s defaults
    kw.update(FIXTURE["run"][i]["kwargs"])
    kw["extrapolators"] = [tuple(e) if isinstance(e, list) else e for e in kw["extrapolators"]]
    jobs = expand_config(run_config(kw.pop("dataset"), kw.pop("score"), **kw))
    got = sorted([j.stage, config_hash(j.config)] for j in jobs if j.stage != "score_subset")
    assert got == FIXTURE["run"][i]["jobs"]
    subsets = {config_hash(j.config["subset"]) for j in jobs if j.stage == "extrapolate"}
    assert {config_hash(j.config) for j in jobs if j.stage == "score_subset"} == subsets


def _typed_round_trip(stage:str, cfg:dict):
    from scoreextra.stages import STAGES
    typ = STAGES.get(stage).config
    if typ is not None: assert typ.from_dict(cfg).to_dict() == cfg, (stage, cfg)


def test_committed_run_folders_pass_their_typed_configs_unchanged():
    "A resumed sweep re-checks every folder's config: each one is accepted and serialises back to the very same dict."
    folders = sorted((ROOT / "runs" / "fm_evidence").glob("*/*/config.json"))
    if not folders: pytest.skip("no run folders of the evidence sweep here")
    for p in folders: _typed_round_trip(p.parent.parent.name, load_json(p)["config"])


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_job_config_round_trips_through_its_type(name):
    for j in expand_config(load_config(CONFIGS / name)): _typed_round_trip(j.stage, j.config)
