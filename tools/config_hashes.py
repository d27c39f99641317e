"""Write tests/config_hashes.json: the (stage, config hash) of every job each experiment config expands to, and of the
jobs `run()` starts for a few argument sets, computed with the code as it is now.

Run once before a refactor of the upper floors; tests/test_config_hashes.py then checks the refactored code gives the
same lists, so every existing run folder stays valid (a resumed sweep never recomputes finished work).

Usage: python tools/config_hashes.py   (rewrites the fixture: only do that when a hash change is intended)
"""
import hashlib, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "config_hashes.json"
# argument sets of `run()` (the CLI's and the demo's among them): its job graph must keep its hashes too
RUN_CALLS = [
    dict(dataset="digits", score="du"),
    dict(dataset="digits", score="tdds", seed_size=0.2, extrapolators=[["knn", 10], ["gnn", 10]],
         prune_rates=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], seed=0, ground_truth=True, baselines=["random"]),
    dict(dataset="digits", score="du", seed_size=100, extrapolators=["knn", {"name": "gnn", "k": [5, 7]}], k=3,
         prune_rates=[0.5], seed=2, baselines=["random", "ssp"], merge="quantile", schedule="paper", score_epochs=11,
         final_epochs=2, batch_size=16, model="mlp"),
    dict(dataset="fashion_mnist", score="tdds", ground_truth=False, baselines=[], schedule="total_steps", sampler="stratified"),
]


def yaml_sha(path: Path) -> str: return hashlib.sha1(path.read_bytes()).hexdigest()


def expanded(path: Path) -> list:
    from scoreextra.pipeline import expand_config, load_config
    return sorted([j.stage, j.key.split("/")[1]] for j in expand_config(load_config(path)))


def run_jobs_old(kw: dict) -> list:
    "The (stage, hash) of every `run_stage` call `run(**kw)` makes, recorded with stand-ins for the stages (nothing trains)."
    import numpy as np
    from scoreextra import pipeline as P
    from scoreextra.core import config_hash
    calls = []
    class Fake:
        def load(self, *a, **k): return np.linspace(0, 1, 50)
        def load_json(self, name, *a, **k):
            return [{"train_acc": 1.0, "train_loss": 0.1}] if name == "log.json" else {"test_acc": 0.5}
        def has(self, *a, **k): return False
    def fake_run_stage(stage, config, *a, **k): calls.append([stage, config_hash(config)]); return Fake()
    saved = P.run_stage, P.RunFolder, P.ledger, P.extrapolation_correlations
    P.run_stage, P.RunFolder = fake_run_stage, lambda *a, **k: Fake()
    P.ledger = lambda *a, **k: {p: 0.0 for p in P.LEDGER_PHASES}
    P.extrapolation_correlations = lambda *a, **k: dict(pearson=0., spearman=0., ceiling_pearson=0., ceiling_spearman=0.)
    try: P.run(**{k: [tuple(e) if isinstance(e, list) else e for e in v] if k == "extrapolators" else v for k, v in kw.items()})
    finally: P.run_stage, P.RunFolder, P.ledger, P.extrapolation_correlations = saved
    return sorted(map(list, {tuple(c) for c in calls if c[0] != "score_subset"}))   # subsets: checked apart by the test


def main():
    sys.path.insert(0, str(ROOT))
    configs = {p.name: dict(yaml_sha=yaml_sha(p), jobs=expanded(p)) for p in sorted((ROOT / "experiments" / "configs").glob("*.yaml"))}
    # run()'s jobs were recorded once, before its refactor: later regenerations keep that record (run() has since
    # grown defaults, e.g. the no-pruning row, that run_config leaves off); delete the file to record them anew
    old = json.loads(OUT.read_text()).get("run") if OUT.exists() else None
    runs = old or [dict(kwargs=kw, jobs=run_jobs_old(kw)) for kw in RUN_CALLS]
    OUT.write_text(json.dumps(dict(configs=configs, run=runs), indent=1) + "\n")
    print(f"wrote {OUT}: {sum(len(c['jobs']) for c in configs.values())} sweep jobs in {len(configs)} configs, "
          f"{sum(len(r['jobs']) for r in runs)} run() jobs in {len(runs)} calls")


if __name__ == "__main__": main()
