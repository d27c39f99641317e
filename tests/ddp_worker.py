"""One rank of the DDP tests in tests/test_gpu_paths.py, started by `torchrun --nproc_per_node 2` (or run as one
process for the reference): trains an MLP on digits with DU and TDDS recorders and saves what this rank recorded.

usage: ddp_worker.py OUT_DIR [--ckpt DIR] [--stop-epoch E] [--amp bf16]
(the one-process reference calls `main([OUT_DIR])` in the test's own process: no RANK, one process)
"""
import argparse, os
from pathlib import Path

import numpy as np

from scoreextra.data import load_dataset
from scoreextra.models import get_model
from scoreextra.streaming import DURecorder, TDDSRecorder
from scoreextra.train import Callback, fit

RUN = dict(epochs=5, batch_size=101, optimizer="sgd", lr=0.05, schedule="onecycle", seed=3, progress=False)


class Stop(Callback):
    "Interrupts the run at the first batch of `epoch` (every rank at the same batch: callbacks run on all ranks)."
    def __init__(self, epoch): self.epoch = epoch
    def after_batch(self, tr, out):
        if tr.epoch == self.epoch: raise SystemExit(3)


class Seen(Callback):
    "Keeps the dataset indices and float32-ness of every batch the callbacks were handed."
    def before_fit(self, tr): self.idx, self.dtypes = [], set()
    def after_batch(self, tr, out): self.idx.append(out.idx.cpu().numpy()); self.dtypes.add(str(out.logits.dtype))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out"); p.add_argument("--ckpt"); p.add_argument("--stop-epoch", type=int); p.add_argument("--amp")
    a = p.parse_args(argv)
    ds = load_dataset("digits", "train")
    idx = np.arange(0, len(ds), 2)[:700]   # 700 samples: 7 batches of 101 with a smaller last one (93), split 47/46 over 2 ranks
    du, tdds, seen = DURecorder(window=3), TDDSRecorder(window=3), Seen()
    cbs = [du, tdds, seen, Stop(-1 if a.stop_epoch is None else a.stop_epoch)]   # the same callbacks on resume
    tr = fit(get_model("mlp", ds.num_classes, ds.in_shape, hidden=[64], seed=0), ds, idx, callbacks=cbs, ckpt_dir=a.ckpt,
             device="cpu", amp=a.amp, **RUN)
    rank = int(os.environ.get("RANK", 0))
    order = np.concatenate(seen.idx) if seen.idx else np.zeros(0, np.int64)
    np.savez(Path(a.out) / f"rank{rank}.npz", du=du.scores(), tdds=tdds.scores(), order=order, world_size=tr.world_size,
             dtypes=sorted(seen.dtypes), head=tr.model.head.weight.detach().numpy(), loss=[r["train_loss"] for r in tr.log],
             config_world=tr.config.get("world_size", 1))


if __name__ == "__main__":
    main()
