"""Damage that heals (issue 27.6): a run folder whose files or records were deleted, retyped, truncated or copied
is named, marked for recompute and recomputed on the next run; a report leaves it out and still gets written.
Was: the same error (or a traceback) on every rerun, and a copied folder counted twice."""
import json, shutil, warnings

import numpy as np
import pytest
import torch

from scoreextra.core import DamagedArtefact, save_torch
from scoreextra.runfolder import RunFolder, run_status
from scoreextra.stages import STAGES, run_stage

RUNS = []


@pytest.fixture(scope="module", autouse=True)
def probe_stage():
    if "heal_probe" not in STAGES:
        @STAGES.register("heal_probe")
        def _probe(cfg, folder, *, runs_root, device=None, progress=False):
            RUNS.append(cfg); folder.save("scores.npy", np.arange(3.))
            save_torch(folder.file("model.pt"), {"w": torch.arange(4.)})
        @STAGES.register("heal_child")
        def _child(cfg, folder, *, runs_root, device=None, progress=False):
            folder.save("top.npy", run_stage("heal_probe", cfg, runs_root).load("scores.npy")[-1:])


def _recomputed(root, cfg) -> bool:
    n = len(RUNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = run_stage("heal_probe", cfg, root)
    return f.done and len(RUNS) == n + 1 and list(f.load("scores.npy")) == [0., 1., 2.]


def test_a_deleted_recorded_artefact_is_named_and_recomputed(tmp_path):
    "Was: FileNotFoundError (exit 2) on every rerun of the stage that reads it."
    cfg = {"c": "deleted"}
    f = run_stage("heal_probe", cfg, tmp_path)
    f.file("scores.npy").unlink()
    with pytest.raises(DamagedArtefact, match=r"scores.npy: recorded when the stage finished, but missing; run folder marked"):
        run_stage("heal_child", cfg, tmp_path)
    assert run_status(tmp_path, "heal_probe", cfg) == "damaged"
    assert run_stage("heal_child", cfg, tmp_path).load("top.npy").tolist() == [2.0]     # the parent recomputed first


@pytest.mark.parametrize("meta", [{"status": "done", "artefacts": [1]}, {"status": "done", "artefacts": {"scores.npy": 5}},
                                  {"status": "done", "artefacts": {"scores.npy": {"bytes": "x", "sha256": 1}}},
                                  {"status": 5}, {"status": "done", "seconds": "x"}, {"status": "done", "seconds": {"a": "1"}},
                                  {"status": "done", "attempts": "two"}, {"status": "done", "damaged": [1]}],
                         ids=lambda m: json.dumps(m))
def test_a_meta_json_with_wrong_types_is_damage_named_and_recomputed(tmp_path, meta):
    "Was: an AttributeError or TypeError traceback on every load."
    cfg = {"c": json.dumps(meta)}
    f = run_stage("heal_probe", cfg, tmp_path)
    f.file("meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"meta.json: .* is .*expected|meta.json: .* is not"):
        assert run_status(tmp_path, "heal_probe", cfg) == "damaged"
    assert _recomputed(tmp_path, cfg)


@pytest.mark.parametrize("content", ["{}", "null", '{"config": 5}', '{"config": null}', '{"config": [1]}', '{"stage": "x"}'])
def test_a_config_json_without_its_config_is_damage_not_a_different_config(tmp_path, content):
    "Was: `{}` refused as a different config (ConfigMismatch, every time), `{\"config\": 5}` a TypeError traceback."
    cfg = {"c": content}
    f = run_stage("heal_probe", cfg, tmp_path)
    f.file("config.json").write_text(content)
    with pytest.warns(UserWarning, match="config.json: "):
        assert run_status(tmp_path, "heal_probe", cfg) == "damaged"
    assert _recomputed(tmp_path, cfg)
    assert json.loads(f.file("config.json").read_text())["config"] == cfg


def test_a_truncated_model_pt_is_named_and_recomputed(tmp_path):
    "Was: model.pt loaded without its recorded sha256: a truncated one gave a traceback forever."
    cfg = {"c": "model"}
    f = run_stage("heal_probe", cfg, tmp_path)
    assert torch.equal(RunFolder(tmp_path, "heal_probe", cfg).load_torch("model.pt")["w"], torch.arange(4.))
    raw = f.file("model.pt").read_bytes()
    f.file("model.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DamagedArtefact, match=r"model.pt: \d+ bytes, but \d+ were written; run folder marked"):
        RunFolder(tmp_path, "heal_probe", cfg).load_torch("model.pt")
    assert _recomputed(tmp_path, cfg)


def test_a_bad_file_in_a_folder_from_before_the_records_is_named(tmp_path):
    "Was: a header declaring a huge array gave a MemoryError that did not name the file."
    f = RunFolder(tmp_path, "heal_probe", {"old": 1})
    f.save("scores.npy", np.zeros(3)); f.update_meta(status="done")           # what the old code's finish() left
    raw = f.file("scores.npy").read_bytes()
    f.file("scores.npy").write_bytes(raw.replace(b"(3,)", b"(99999999999,)"))
    with pytest.raises(DamagedArtefact, match=r"scores.npy: not a readable .npy file"):
        RunFolder(tmp_path, "heal_probe", {"old": 1}).load("scores.npy")
    assert run_status(tmp_path, "heal_probe", {"old": 1}) == "damaged"


# ---------------------------------------------------------------- reports
def _runs(root):
    "Two finished pruned trainings on kNN extrapolations of two subset seeds; their folders (prune, extrapolate)."
    from scoreextra.supervised import extrapolate_config, prune_config, subset_config
    out = []
    for seed in (0, 1):
        sc = subset_config("digits", "du", 0.2, seed)
        sub = RunFolder(root, "score_subset", sc)
        with sub.phase("subset_training"): sub.save("seed_idx.npy", np.arange(5)); sub.save("seed_scores.npy", np.ones(5))
        sub.finish()
        ec = extrapolate_config(sc, "knn", 3)
        e = RunFolder(root, "extrapolate", ec)
        with e.phase("extrapolation"): e.save("scores.npy", np.arange(50.))
        e.finish()
        p = RunFolder(root, "prune_train", prune_config("extrapolate", ec, 0.5, seed, epochs=1))
        with p.phase("final_training"): p.save_json("metrics.json", {"test_acc": 0.5 + 0.1 * seed})
        p.finish(); out.append((p, e))
    return out


def test_a_report_leaves_out_a_run_whose_parent_was_deleted_and_is_written(tmp_path):
    "Was: a traceback (exit 1) and no report."
    from scoreextra.reporting import collect, report
    (p0, _), (p1, e1) = _runs(tmp_path / "runs")
    shutil.rmtree(e1.path)
    with pytest.warns(UserWarning, match=f"left out of the report, damaged: .*{e1.path}"):
        c = collect(tmp_path / "runs")
    assert c["prunes"].path.tolist() == [str(p0.path)] and [p for p, _ in c["damaged"]] == [str(p1.path)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report(tmp_path / "runs", tmp_path / "report")
    assert (tmp_path / "report" / "accuracy.md").exists()


def test_a_run_folder_copied_under_another_hash_is_counted_once(tmp_path):
    "Was: the copy read as a second seed of the original (its acc_std 0.0, its seeds 2)."
    from scoreextra.reporting import accuracy_summary, collect
    (p0, _), _ = _runs(tmp_path)
    shutil.copytree(p0.path, p0.path.with_name("0123456789"))
    with pytest.warns(UserWarning, match="0123456789/config.json: holds the config of run"):
        c = collect(tmp_path)
    assert sorted(c["prunes"].seed) == [0, 1]
    acc = accuracy_summary(c["prunes"])
    assert acc.seeds.tolist() == [2] and acc.acc.tolist() == pytest.approx([0.55])       # was 0.533: 0.5 counted twice


def test_subset_embeddings_name_a_truncated_or_missing_model_pt_and_mark_the_folder(tmp_path):
    "Was: a torch traceback on every run for a truncated model.pt, 'delete the folder' when both files were gone."
    from scoreextra.supervised import subset_config, subset_embeddings
    cfg = subset_config("digits", "du", 0.2, seed=0, epochs=11)
    f = run_stage("score_subset", cfg, tmp_path)
    emb = np.array(subset_embeddings(f))
    f.file("embeddings.npy").unlink()
    assert np.allclose(subset_embeddings(f), emb, atol=1e-5)              # recomputed from model.pt
    f.file("embeddings.npy").unlink()
    f.file("model.pt").write_bytes(f.file("model.pt").read_bytes()[:100])
    with pytest.raises(DamagedArtefact, match=r"model.pt: .*marked for recompute"):
        subset_embeddings(RunFolder(tmp_path, "score_subset", cfg))
    assert run_status(tmp_path, "score_subset", cfg) == "damaged"
    g = run_stage("score_subset", cfg, tmp_path)                           # recomputed
    g.file("embeddings.npy").unlink(); g.file("model.pt").unlink()
    with pytest.raises(DamagedArtefact, match=r"neither embeddings.npy nor model.pt"):
        subset_embeddings(RunFolder(tmp_path, "score_subset", cfg))
    assert run_status(tmp_path, "score_subset", cfg) == "damaged"
