"""Cheap score-based data pruning: score a small subset, extrapolate the scores with kNN or a GCN, prune.

Modules:

- `scoreextra.adversarial`: PGD and TRADES in pixel space, adversarial training through `fit`, Dynamic Uncertainty recorded at the end of each epoch, robust evaluation, and the paper's adversarial-training configs.
- `scoreextra.adversarial_stages`: Score extrapolation for adversarial training (paper Sec. 4, Table 4): DU recorded during adversarial training of a subset, extrapolated in the subset model's embedding, and the pruned set trained adversarially again, as cached pipeline stages with their sweep config and report table.
- `scoreextra.converge`: Is the final training converged on this data? Trained at E and 2E epochs on the training data minus a carved validation split: if doubling the epochs still gains, the comparison of pruning methods is not to be trusted yet.
- `scoreextra.csrgraph`: The kNN graph every graph extrapolator builds on: a `CSRGraph` (compressed sparse rows by target node), from an edge list (`edges_to_csr`) or from the k nearest neighbours of every embedding (`knn_graph`), its edges weighted by distance.
- `scoreextra.data`: The `Dataset`, the registry of datasets by name (`load_dataset`) and digits, your own data (npz, `module:function`, `register_dataset`, `fingerprint`), batched on-device augmentation and a seeded batch loader.
- `scoreextra.experiments`: Experiment configs (YAML) → validated jobs in dependency order → run in this process, as papermill notebooks or as submitit jobs: the sweep that regenerates the paper's experiments.
- `scoreextra.faiss_search`: Nearest-neighbour search on faiss (exact, IVF, HNSW): exact, tie-broken Euclidean neighbours for any n, an approximate index tuned to a measured recall, on the CPU or a GPU.
- `scoreextra.gnn`: GNN extrapolation (paper Sec. 3.3, App. B.4): a kNN graph over every sample, a 3-layer GCN trained on the seed nodes, its predictions filling in the rest.
- `scoreextra.knn`: The paper's kNN score extrapolation (Eq. 6), stronger label-aware variants, and the merge of seed and extrapolated scores.
- `scoreextra.models`: The networks that score, embed and get trained on the pruned data: an MLP, a small CNN, the CIFAR ResNet-18/50 and WideResNet-28-10, all written here (no torchvision).
- `scoreextra.own_data`: Your own data, model and training loop: `extrapolate` on arrays, `extrapolate_scores` with a result object, and a walk-through on two kinds of data the paper never saw.
- `scoreextra.paradigms`: What every paradigm (supervised, unsupervised, adversarial training) is declared with, and what the two of paper Sec. 4 share: the `Paradigm` record, extrapolation in a representation space, the checks of sweep configs, smoke runs in miniature and the helpers of their report tables.
- `scoreextra.pipeline`: The whole method (paper Fig. 1) in one call, `run`, and the package's pipeline API in one import: stages, configs, sweep and report.
- `scoreextra.preflight`: What a job of the supervised method would fail on only once it runs, found before any job starts: `sweep` and `run` share this one check.
- `scoreextra.propagation`: Graph extrapolators beyond the paper that cost a few sparse products: label propagation (`propagate`), a simplified GCN (`sgc`) and correct and smooth (`cs`) on a cheap kNN graph, every hyperparameter chosen on the seeds.
- `scoreextra.readers`: Readers of the built-in datasets' release files: Fashion-MNIST (idx) and its subsamples, CIFAR-10/100 (python pickles), downsampled ImageNet 64px (npz), Places365 at 64px (JPEGs, converted once) and DM-Improves-AT synthetic CIFAR (npz), checked, memory-mapped where big.
- `scoreextra.reporting`: Tables (markdown + CSV) and figures (PNG) of every finished run under a runs root: the analogues of the paper's tables and figures, with the cost ledger and the compute setting.
- `scoreextra.scores`: Dynamic Uncertainty, TDDS, EL2N, forgetting and AUM as pure functions on recorded arrays: short, float64, the reference that the streaming recorders are checked against.
- `scoreextra.sign`: Decoupled graph extrapolators: the embeddings propagated over the kNN graph once ([X, ÂX, Â²X, …], SIGN), then a small MLP trained on the seed rows only, early-stopped on held-out seeds; hops=0 is the MLP on the embeddings alone (the no-graph ablation).
- `scoreextra.stages`: The stage framework: a stage is declared once (name, level, parents, ledger phases) and `run_stage`, the cost ledger, sweep order and the one papermill template derive from it; reading finished run folders back.
- `scoreextra.standins`: Stand-in data: a few random images of each built-in dataset in its real on-disk release format, image size, dtype and class count, so that every reader runs on a laptop.
- `scoreextra.streaming`: Streaming recorders: training callbacks that compute DU, TDDS, forgetting and AUM while the model trains, in O(n·window) memory instead of the whole history, under `fit` or in your own loop.
- `scoreextra.subset_scoring`: Scoring runs: every score by name with its pure function, recorder and the paper's recipe (`SCORES`), `score_subset` and `score_full` that train and record it, and the checks that say whether the seed scores are worth extrapolating.
- `scoreextra.supervised`: The supervised method (paper Fig. 1) as five cached, resumable stages: subset scoring, full-data scoring, extrapolation, baselines, pruned training. (The same flow on arrays, without run folders, is `own_data.extrapolate_scores`.)
- `scoreextra.supervised_configs`: The supervised paradigm's sweep configs (paper Fig. 1): their keys and checks, their expansion into the jobs of the five `supervised` stages, their smoke miniature, and its `Paradigm` record.
- `scoreextra.train`: One training loop for every phase: scoring runs with recorders, the subset model, and the final training on the pruned data. Callbacks, schedules, a progress bar, a per-epoch table, and checkpoints that resume bit-for-bit.
- `scoreextra.unsupervised`: Score extrapolation without labels (paper Sec. 4, Table 3): DU of TURTLE's pseudo-labels on a subset, extrapolated in the same representation space, as cached pipeline stages with their sweep config and report table."""

__version__ = "0.1.0"

# The calls most users need, at the top level (scoreextra.extrapolate_scores,
# scoreextra.extrapolate, scoreextra.select, scoreextra.run), imported lazily so that `import
# scoreextra.core` stays light.
def __getattr__(name):
    if name == "select":
        from .prune import select
        return select
    if name in ("extrapolate_scores", "extrapolate"):
        from . import own_data
        return getattr(own_data, name)
    if name == "run":
        from . import pipeline
        return pipeline.run
    raise AttributeError(f"module 'scoreextra' has no attribute {name!r}")
