"""The prepared GPU check (issue 15, item 3): what one H100/H200 run of a few minutes tells about the GPU paths.

Run it through `bash bench/device_check.sh OUT_DIR` (which installs what the machine lacks first); it writes
OUT_DIR/device_check.json and OUT_DIR/device_check.md. Phases, each timed:

1. `gpu_tests`: the tests marked `gpu` (their CUDA paths), in a pytest subprocess, with a JUnit report;
2. `throughput`: ResNet-18 training throughput at 32x32 (images/s of whole `fit` epochs on on-device batches):
   fp32 vs bf16, NCHW vs channels-last, eager vs `torch.compile`;
3. `method`: the paper's method at paper model size on Fashion-MNIST: full-data DU with ResNet-18 (the ground truth),
   a 20% random seed subset scored the same way, embeddings of every sample, kNN (Eq. 6) and paper-size GCN
   extrapolation, correlations on D_r, and ResNet-18 trainings on the data kept at 50% and 80% pruning
   (ground truth, kNN, GCN, random), each with its test accuracy and seconds.

`--cpu-dry-run` shrinks everything (600 training images, 2-3 epochs, a small CNN, a small GCN, a few throughput
steps, `aot_eager` instead of inductor) so the whole script is checked on a CPU in a minute or two;
tests/test_device_check.py runs it under `pytest -m slow`.
"""
import argparse, dataclasses, json, os, platform, re, subprocess, sys, time, traceback
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from scoreextra.core import atomic_path, get_device
from scoreextra.data import Dataset, load_dataset
from scoreextra.gnn import GNNExtrapolator
from scoreextra.knn import knn_extrapolate
from scoreextra.metrics import extrapolation_correlations
from scoreextra.models import get_model
from scoreextra.prune import select
from scoreextra.recipes import DATASET_DEFAULTS, DU_SETTINGS, FINAL_RECIPE
from scoreextra.sampling import sample_subset
from scoreextra.subset_scoring import score_full, score_subset
from scoreextra.train import embed_all, evaluate, fit

ROOT = Path(__file__).resolve().parents[1]
FM = DATASET_DEFAULTS["fashion_mnist"]
# the real run: paper model size (ResNet-18, DU window 10 over Fashion-MNIST's 20 scoring epochs, the GCN's paper
# widths and epochs); the dry run: the same code paths, shrunk to run in a minute or two on a CPU.
SIZES = {
    "gpu": dict(n_train=None, n_test=None, model="resnet18", model_kw={}, score_epochs=FM["score_epochs"],
                window=DU_SETTINGS["window"], final_epochs=FM["final_epochs"], batch_size=FM["batch_size"],
                seed_frac=0.2, k=10, gcn=dict(hidden=(512, 256), epochs=25), rates=(0.5, 0.8), amp="bf16",
                channels_last=True, tp=dict(model="resnet18", model_kw={}, batch=256, steps=40, epochs=3, compile=True,
                                             configs=[(None, False, False), (None, True, False), ("bf16", False, False), ("bf16", True, False), ("bf16", True, True)])),
    "dry": dict(n_train=600, n_test=200, model="cnn", model_kw=dict(widths=(8, 16, 32)), score_epochs=3, window=2,
                final_epochs=2, batch_size=64, seed_frac=0.2, k=5, gcn=dict(hidden=(32, 16), epochs=2), rates=(0.5, 0.8),
                amp=None, channels_last=True,
                tp=dict(model="cnn", model_kw=dict(widths=(8, 16, 32)), batch=16, steps=3, epochs=2, compile="aot_eager", configs=[(None, False, False), ("bf16", True, False), (None, True, True)])),
}


class Phases(dict):
    "Seconds of each named phase, in the order they ran: `with phases(name): ...`."
    @contextmanager
    def __call__(self, name):
        t0 = time.perf_counter()
        try: yield
        finally: self[name] = round(time.perf_counter() - t0, 2)


def environment(device) -> dict:
    import faiss, scoreextra
    env = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda, faiss=faiss.__version__,
               scoreextra=str(Path(scoreextra.__file__).parent),
               device=str(device), cpu_threads=torch.get_num_threads(), host=platform.node())
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), gpu_memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1),
                   bf16=torch.cuda.is_bf16_supported())
    return env


def gpu_tests(out:Path) -> dict:
    "Run every test marked `gpu` (files that use the marker), in a subprocess; counts from its JUnit report."
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py") if "mark.gpu" in p.read_text())
    xml = out / "gpu_tests.xml"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-m", "gpu",
                        f"--junitxml={xml}", *files], cwd=ROOT, capture_output=True, text=True)
    (out / "gpu_tests.log").write_text(r.stdout[-20000:] + r.stderr[-5000:])
    counts = dict(tests=0, failures=0, errors=0, skipped=0)
    if xml.exists():
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in counts}
    failed = [m.group(1) for m in re.finditer(r"^(?:FAILED|ERROR) (\S+)", r.stdout, re.M)]
    return dict(files=files, returncode=r.returncode, **counts, passed=counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
                failed=failed)


def synthetic32(n:int, seed:int=0) -> Dataset:
    "`n` random 32x32x3 uint8 images with 10 labels: throughput does not depend on what the pixels show."
    g = np.random.default_rng(seed)
    return Dataset("random32", "train", g.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), g.integers(0, 10, n),
                   mean=(0.5,) * 3, std=(0.25,) * 3)


def throughput(size:dict, device) -> list[dict]:
    "Images/s of `fit` epochs of the model (ResNet-18; a tiny CNN in the dry run) at 32x32 for each (amp, channels_last, compiled); the first epoch is warm-up (and compilation)."
    t, rows = size["tp"], []
    ds = synthetic32(t["batch"] * t["steps"])
    for amp, cl, comp in t["configs"]:
        if device.type == "cuda": torch.cuda.synchronize()
        tr = fit(get_model(t["model"], 10, ds.in_shape, seed=0, **t["model_kw"]), ds, epochs=t["epochs"], batch_size=t["batch"], augment=False,
                 device=device, progress=False, amp=amp, channels_last=cl, compile=t["compile"] if comp else False)
        secs = [r["seconds"] for r in tr.log]
        best = min(secs[1:])
        rows.append(dict(model=t["model"], dtype=amp or "fp32", channels_last=cl, compiled=t["compile"] if comp else False,
                         images_per_s=round(len(ds) / best, 1), first_epoch_s=secs[0], steady_epoch_s=best))
    base = rows[0]["images_per_s"]
    for r in rows: r["speedup"] = round(r["images_per_s"] / base, 2)
    return rows


def load_fashion(size:dict, data_root) -> tuple[Dataset, Dataset]:
    ds, test = load_dataset("fashion_mnist", "train", root=data_root), load_dataset("fashion_mnist", "test", root=data_root)
    cut = lambda d, m: d if m is None else dataclasses.replace(d, x=d.x[:m], y=d.y[:m])
    return cut(ds, size["n_train"]), cut(test, size["n_test"])


def method(size:dict, device, data_root, ph:Phases) -> dict:
    "The paper's pipeline on Fashion-MNIST at the given size; every phase timed into `ph`."
    with ph("load_data"): ds, test = load_fashion(size, data_root)
    n = len(ds)
    du = dict(model=size["model"], epochs=size["score_epochs"], batch_size=size["batch_size"], window=size["window"],
              device=device, amp=size["amp"], channels_last=size["channels_last"], seed=0)
    if size["model_kw"]: du["model"] = get_model(size["model"], ds.num_classes, ds.in_shape, seed=0, **size["model_kw"])
    with ph("ground_truth_du_full_data"): truth, _, _ = score_full(ds, "du", **du)
    seed_idx = sample_subset(n, size["seed_frac"], "random", seed=0)
    if size["model_kw"]: du["model"] = get_model(size["model"], ds.num_classes, ds.in_shape, seed=0, **size["model_kw"])
    with ph("subset_du_scoring"): seed_scores, sub_model, _ = score_subset(ds, seed_idx, "du", **du)
    with ph("embedding"): emb = embed_all(sub_model, ds, device=device)
    with ph("knn_extrapolation"): s_knn = knn_extrapolate(emb, seed_idx, seed_scores, k=size["k"])
    with ph("gcn_extrapolation"):
        gcn = GNNExtrapolator(k=size["k"], seed=0, device=device, **size["gcn"]).fit(emb, ds.y, seed_idx, seed_scores)
        s_gcn = gcn.predict()
    corr = {m: {k: round(float(v), 4) for k, v in extrapolation_correlations(s, truth, seed_idx, seed_scores).items()}
            for m, s in (("knn", s_knn), ("gcn", s_gcn))}
    scores = {"ground_truth": truth, "knn": s_knn, "gcn": s_gcn, "random": np.random.default_rng(0).random(n)}
    pruned = []
    with ph("pruned_trainings"):
        for rate in size["rates"]:
            for name, s in scores.items():
                kept = select(s, 1 - rate)
                t0 = time.perf_counter()
                m = get_model(size["model"], ds.num_classes, ds.in_shape, seed=0, **size["model_kw"])
                fit(m, ds, kept, epochs=size["final_epochs"], batch_size=size["batch_size"], device=device, progress=False,
                    amp=size["amp"], channels_last=size["channels_last"], **FINAL_RECIPE)
                pruned.append(dict(prune_rate=rate, scores=name, kept=len(kept), test_acc=round(evaluate(m, test, device=device), 4),
                                   seconds=round(time.perf_counter() - t0, 2)))
    return dict(n_train=n, n_test=len(test), seed_size=len(seed_idx), embedding_dim=int(emb.shape[1]), gcn_mode=gcn.mode_,
                settings={k: v for k, v in size.items() if k != "tp"}, correlations_on_D_r=corr, pruned=pruned)


def markdown(res:dict) -> str:
    "The results as markdown tables."
    e, L = res["environment"], []
    L += [f"# Device check ({'CPU dry run' if res['dry_run'] else e.get('gpu', e['device'])})", "",
          f"torch {e['torch']} (CUDA {e['cuda']}), Python {e['python']}, faiss {e['faiss']}, device `{e['device']}`; "
          f"total {res['total_seconds']} s.", "", "| phase | seconds |", "|---|---:|"]
    L += [f"| {k} | {v} |" for k, v in res["phases"].items()]
    g = res.get("gpu_tests")
    if g: L += ["", f"GPU tests ({', '.join(g['files'])}): {g['passed']} passed, {g['failures'] + g['errors']} failed, "
                    f"{g['skipped']} skipped (pytest exit {g['returncode']})" + (f"; failed: {', '.join(g['failed'])}" if g["failed"] else ".")]
    if res.get("throughput"):
        L += ["", f"{res['throughput'][0]['model']} training throughput at 32x32 (whole `fit` epochs, on-device batches):", "",
              "| dtype | channels-last | compiled | images/s | x fp32 NCHW eager | first epoch s |", "|---|---|---|---:|---:|---:|"]
        L += [f"| {r['dtype']} | {r['channels_last']} | {r['compiled']} | {r['images_per_s']} | {r['speedup']} | {r['first_epoch_s']} |"
              for r in res["throughput"]]
    m = res.get("method")
    if m:
        L += ["", f"Fashion-MNIST: {m['n_train']} training images, {m['seed_size']} seeds, model {m['settings']['model']}, "
                  f"GCN mode {m['gcn_mode']}. Correlation with the full-data DU on D_r (non-seeds):", "",
              "| extrapolator | Pearson D_r | Spearman D_r | ceiling Pearson (seeds) |", "|---|---:|---:|---:|"]
        L += [f"| {k} | {c['pearson']} | {c['spearman']} | {c.get('ceiling_pearson', '')} |" for k, c in m["correlations_on_D_r"].items()]
        L += ["", "Test accuracy of the trainings on the kept data:", "", "| prune rate | scores | kept | test acc | seconds |",
              "|---:|---|---:|---:|---:|"]
        L += [f"| {r['prune_rate']} | {r['scores']} | {r['kept']} | {r['test_acc']} | {r['seconds']} |" for r in m["pruned"]]
    for name, err in res.get("errors", {}).items():
        L += ["", f"**{name} failed**: {err['error']} (traceback in device_check.json)"]
    return "\n".join(L) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="folder for device_check.json, device_check.md, the GPU tests' report and log")
    p.add_argument("--cpu-dry-run", action="store_true", help="shrink everything and run on the CPU")
    p.add_argument("--data", default=None, help="data root holding fashion-mnist/ (default: scoreextra.data.data_root())")
    p.add_argument("--skip", nargs="*", default=[], choices=["gpu_tests", "throughput", "method"], help="phases to leave out")
    a = p.parse_args(argv)
    device = torch.device("cpu") if a.cpu_dry_run else get_device("cuda")
    size, ph, t0 = SIZES["dry" if a.cpu_dry_run else "gpu"], Phases(), time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    res = dict(dry_run=a.cpu_dry_run, environment=environment(device), install=json.loads(os.environ.get("DEVICE_CHECK_INSTALL", "{}")))
    steps = {"gpu_tests": lambda: gpu_tests(a.out), "throughput": lambda: throughput(size, device),
             "method": lambda: method(size, device, a.data, ph)}   # method times its own parts
    for name, step in steps.items():
        if name in a.skip: continue
        try:
            if name == "method": res[name] = step()
            else:
                with ph(name): res[name] = step()
        except Exception as e:   # one run on a lent machine: keep the traceback in the report and go on with the next phase
            res.setdefault("errors", {})[name] = dict(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                                                      traceback=traceback.format_exc(limit=-10))
        write(res, a.out, ph, t0)   # after every phase, so that a run cut short by its time limit still leaves a report
    print(markdown(res))
    failed = res.get("errors") or res.get("gpu_tests", {}).get("returncode", 0) != 0
    if failed and __name__ == "__main__": sys.exit(1)
    return res


def write(res:dict, out:Path, ph:Phases, t0:float):
    "Write device_check.json and device_check.md atomically, with the phases timed so far."
    res["phases"], res["total_seconds"] = dict(ph), round(time.perf_counter() - t0, 1)
    for name, text in (("device_check.json", json.dumps(res, indent=1, default=str)), ("device_check.md", markdown(res))):
        with atomic_path(out / name) as tmp: Path(tmp).write_text(text)

if __name__ == "__main__":
    main()
