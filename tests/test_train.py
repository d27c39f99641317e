"End-to-end checks of `scoreextra.train` on scikit-learn digits: resume, seeds, accuracy, embeddings, callbacks, bad input."
import numpy as np
import pytest
import torch

from scoreextra.core import load_torch
from scoreextra.data import load_dataset, to_tensor
from scoreextra.models import get_model
from scoreextra.recipes import TDDS_RECIPE
from scoreextra.train import Callback, Trainer, TrainRecipe, embed_all, evaluate, fit, predict_logits

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


def cnn(ds, seed=0):
    return get_model("cnn", ds.num_classes, ds.in_shape, seed=seed)


def weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Kill(Callback):
    "Simulates a crash: raise KeyboardInterrupt at a given hook of a given epoch (never when at_epoch is None)."
    def __init__(self, at_epoch=None, hook="before_epoch"): self.at_epoch, self.hook = at_epoch, hook
    def _maybe(self, tr):
        if tr.epoch == self.at_epoch: raise KeyboardInterrupt
    def before_epoch(self, tr):
        if self.hook == "before_epoch": self._maybe(tr)
    def after_batch(self, tr, out):
        if self.hook == "after_batch" and tr.step % len(tr.loader) == 1: self._maybe(tr)


class Recorder(Callback):
    "Keeps the per-sample training loss and the trained indices of every epoch; state survives a resume."
    def before_fit(self, tr):
        self.loss = np.full((tr.epochs, tr.n), np.nan, np.float32); self.seen = [[] for _ in range(tr.epochs)]
        self.modes = [set() for _ in range(tr.epochs)]
    def after_batch(self, tr, out):
        i = out.idx.cpu().numpy()
        self.loss[tr.epoch, i] = out.loss.cpu().numpy(); self.seen[tr.epoch].append(i); self.modes[tr.epoch].add(tr.model.training)
    def state_dict(self): return {"loss": self.loss, "seen": self.seen, "modes": self.modes}
    def load_state_dict(self, st): self.loss, self.seen, self.modes = st["loss"], st["seen"], st["modes"]


# SGD with momentum + onecycle (which also cycles the momentum) + augmentation: every piece of state matters
RESUME_ARGS = dict(epochs=4, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                   schedule="onecycle", augment={"pad": 1, "flip": True}, seed=3, device="cpu", progress=False)


@pytest.mark.parametrize("hook", ["before_epoch", "after_batch"])
def test_resume_after_kill_is_bit_identical(digits, tmp_path, hook):
    ds, _ = digits
    ref_rec = Recorder()
    ref = fit(cnn(ds), ds, callbacks=[ref_rec, Kill()], **RESUME_ARGS)
    # killed at the start of epoch 3 (or after its first batch): epochs 1-2 are in the checkpoint
    with pytest.raises(KeyboardInterrupt):
        fit(cnn(ds), ds, callbacks=[Recorder(), Kill(2, hook)], ckpt_dir=tmp_path, **RESUME_ARGS)
    ck = load_torch(tmp_path / "last.pt")
    assert ck["epochs_done"] == 2 and len(ck["log"]) == 2 and ck["step"] == 2 * -(-len(ds) // 128)
    # resume in a "new process": a fresh model with a different init, fresh callbacks
    rec = Recorder()
    res = fit(cnn(ds, seed=99), ds, callbacks=[rec, Kill()], ckpt_dir=tmp_path, **RESUME_ARGS)
    assert weights_equal(ref.model, res.model)
    assert res.step == ref.step and [e["train_loss"] for e in res.log] == [e["train_loss"] for e in ref.log]
    np.testing.assert_array_equal(rec.loss, ref_rec.loss)      # the recorder's history survived the kill
    sa, sb = ref.opt.state_dict()["state"], res.opt.state_dict()["state"]
    assert all(torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"]) for k in sa)


def test_finished_checkpoint_returns_without_training(digits, tmp_path):
    ds, _ = digits
    args = dict(epochs=2, batch_size=256, seed=0, device="cpu", progress=False)
    done = fit(cnn(ds), ds, ckpt_dir=tmp_path, callbacks=[Recorder()], **args)
    rec = Recorder()
    rec.after_batch = lambda tr, out: pytest.fail("trained again")
    again = fit(cnn(ds, seed=5), ds, ckpt_dir=tmp_path, callbacks=[rec], **args)
    assert weights_equal(done.model, again.model) and again.step == done.step and len(again.log) == 2
    assert np.isfinite(rec.loss).all()                          # the recorder got its saved state back
    with pytest.raises(ValueError, match="same callbacks"):
        fit(cnn(ds), ds, ckpt_dir=tmp_path, callbacks=[Recorder(), Kill()], **args)


def test_checkpoint_of_another_run_is_refused(digits, tmp_path):
    ds, _ = digits
    fit(cnn(ds), ds, epochs=1, ckpt_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="different run"):
        fit(cnn(ds), ds, np.arange(100), epochs=1, ckpt_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="different run"):
        fit(cnn(ds), ds, epochs=1, seed=1, ckpt_dir=tmp_path, device="cpu", progress=False)


def test_same_seed_same_weights_other_seed_differs(digits):
    ds, _ = digits
    args = dict(epochs=2, batch_size=128, augment={"pad": 1}, device="cpu", progress=False)
    a = fit(cnn(ds), ds, seed=0, **args).model
    b = fit(cnn(ds), ds, seed=0, **args).model
    c = fit(cnn(ds), ds, seed=1, **args).model          # same init, other batch order and crops
    assert weights_equal(a, b)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_trained_cnn_beats_90_percent_on_digits(digits):
    ds, te = digits
    model = cnn(ds)
    acc0 = evaluate(model, te)
    assert 0.0 <= acc0 <= 1.0
    tr = fit(model, ds, epochs=6, batch_size=64, lr=3e-3, schedule="onecycle", eval_ds=te, device="cpu", progress=False)
    acc = evaluate(model, te)
    assert 0.9 < acc <= 1.0 and acc == tr.log[-1]["eval_acc"]
    # evaluate agrees with the argmax of predict_logits against the labels
    lg = predict_logits(model, te)
    assert lg.shape == (len(te), 10) and lg.dtype == np.float32
    assert acc == pytest.approx(float((lg.argmax(1) == te.y).mean()))


def test_embed_all_is_in_dataset_order(digits):
    ds, te = digits
    model = cnn(ds)
    fit(model, ds, epochs=1, device="cpu", progress=False)       # non-trivial BatchNorm statistics
    emb = embed_all(model, te, batch_size=64)
    assert emb.shape == (len(te), model.embed_dim) and emb.dtype == np.float32
    model.eval()
    with torch.no_grad():
        for i in (0, 1, 63, 64, len(te) - 1):                      # across batch boundaries
            alone = model.embed(to_tensor(te, np.array([i]), CPU))[0].numpy()
            np.testing.assert_allclose(emb[i], alone, rtol=1e-5, atol=1e-5)
    sub = np.array([7, 2, 300])
    np.testing.assert_allclose(embed_all(model, te, sub), emb[sub], rtol=1e-5, atol=1e-5)   # idx order


def test_callbacks_see_every_trained_index_once_per_epoch(digits):
    ds, _ = digits
    sub = np.random.default_rng(0).permutation(len(ds))[:500]    # unsorted subset
    rec = Recorder()
    tr = fit(cnn(ds), ds, sub, epochs=3, batch_size=64, callbacks=[rec], device="cpu", progress=False)
    np.testing.assert_array_equal(tr.idx, np.sort(sub))
    for e in range(3):
        np.testing.assert_array_equal(np.sort(np.concatenate(rec.seen[e])), np.sort(sub))
    assert not np.array_equal(np.concatenate(rec.seen[0]), np.concatenate(rec.seen[1]))     # reshuffled per epoch
    assert np.isnan(np.delete(rec.loss, sub, axis=1)).all()


def test_batchout_views_and_order_of_calls(digits):
    ds, _ = digits
    calls = []

    class Probe(Callback):
        def __init__(self, name, order): self.name, self.order = name, order
        def after_batch(self, tr, out):
            calls.append(self.name)
            assert out.x.shape == out.x_clean.shape and not torch.equal(out.x, out.x_clean)   # augmented vs clean
            assert not out.logits.requires_grad and out.loss.shape == out.y.shape == out.idx.shape
            # logits come from the parameters before this batch's step: a second forward now gives the same
            with torch.no_grad(): assert torch.equal(tr.model(out.x), out.logits)
    fit(cnn(ds), ds, np.arange(64), epochs=1, batch_size=64, augment={"pad": 2}, device="cpu", progress=False,
        callbacks=[Probe("b", 1), Probe("a", 0)])
    assert calls == ["a", "b"]


def test_bn_eval_bug_trains_in_eval_mode_from_epoch_two(digits):
    ds, _ = digits
    rec = Recorder()
    fit(cnn(ds), ds, epochs=3, callbacks=[rec], bn_eval_bug=True, device="cpu", progress=False)
    assert rec.modes == [{True}, {False}, {False}]
    rec = Recorder()
    fit(cnn(ds), ds, epochs=2, callbacks=[rec], device="cpu", progress=False)
    assert rec.modes == [{True}, {True}]


def test_cosine_schedule_is_stepped_per_batch(digits):
    ds, _ = digits
    tr = fit(cnn(ds), ds, epochs=2, batch_size=256, optimizer="sgd", lr=0.01, nesterov=True, schedule="cosine",
             device="cpu", progress=False)
    assert tr.step == 2 * len(tr.loader)
    assert tr.opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)     # T_max = epochs x batches reached


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "epochs must be an int >= 1, got 0"),
    (dict(epochs=-2), "epochs must be an int >= 1"),
    (dict(epochs=1.5), "epochs must be an int >= 1"),
    (dict(epochs=1, optimizer="adagrad"), "unknown optimizer 'adagrad'"),
    (dict(epochs=1, schedule="step"), "unknown schedule 'step'"),
    (dict(epochs=1, batch_size=0), "batch_size must be an int >= 1"),
    (dict(epochs=1, lr=0.0), "lr must be > 0"),
    (dict(epochs=1, optimizer="sgd", momentum=0.0, nesterov=True), "nesterov=True needs momentum > 0"),
])
def test_bad_arguments_raise_clear_errors(digits, kw, match):
    ds, _ = digits
    with pytest.raises(ValueError, match=match.replace("(", r"\(")):
        fit(cnn(ds), ds, device="cpu", progress=False, **kw)


def test_recipe_is_frozen_checked_and_names_unknown_keys():
    r = TrainRecipe(epochs=2)
    assert (r.batch_size, r.optimizer, r.lr, r.momentum, r.nesterov, r.weight_decay, r.schedule) == (256, "adam", 1e-3, 0.9, False, 0.0, None)
    assert (r.augment, r.bn_eval_bug, r.channels_last, r.amp, r.compile) == (None, False, False, None, False)
    with pytest.raises(AttributeError, match="cannot assign to field 'lr'"): r.lr = 0.1
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"): TrainRecipe(epochs=0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -0.5"): r.replace(weight_decay=-0.5)
    with pytest.raises(ValueError, match="amp must be one of .* got 'float16'"): TrainRecipe.from_config({"epochs": 1, "amp": "float16"})
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) \['learning_rate'\]; a TrainRecipe has \['epochs', 'batch_size'"):
        TrainRecipe.from_config({"epochs": 1, "learning_rate": 0.1})
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) \['verbose'\]"): r.replace(verbose=True)
    aug = {"pad": 1}; a = TrainRecipe(epochs=1, augment=aug); aug["pad"] = 9
    assert a.augment == {"pad": 1}                                     # the recipe holds its own copy
    assert TrainRecipe(epochs=np.int64(3), lr=1).asdict()["epochs"] == 3 and type(TrainRecipe(epochs=1, lr=1).lr) is float


def test_checkpoint_config_is_the_recipe_as_run(digits):
    "The config a checkpoint records (and a resume compares): the same keys and values as before the recipe existed."
    ds, _ = digits
    t = Trainer(cnn(ds), ds, [5, 0, 3], TrainRecipe.from_config({**TDDS_RECIPE, "epochs": 2, "augment": {"pad": 1}}), seed=4,
                device="cpu", progress=False)
    black = tuple(-m / s for m, s in zip(ds.mean, ds.std))
    assert t.config == dict(dataset="digits", split="train", n=len(ds), n_idx=3, idx=t.config["idx"], model="SmallCNN", epochs=2,
                            batch_size=256, optimizer="sgd", lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4,
                            schedule="cosine", augment={"fill": black, "pad": 1}, seed=4, bn_eval_bug=False, loss_fn=None)
    on = Trainer(cnn(ds), ds, [0], TrainRecipe(epochs=1, channels_last=True, compile="aot_eager"), device="cpu", progress=False)
    assert on.config["channels_last"] is True and on.config["compile"] == "aot_eager" and "amp" not in on.config


def test_fit_takes_a_recipe_or_its_settings_by_name(digits):
    ds, _ = digits
    recipe = TrainRecipe(epochs=2, batch_size=128, lr=3e-3, schedule="onecycle")
    a = fit(cnn(ds), ds, np.arange(300), recipe, device="cpu", progress=False)
    b = fit(cnn(ds), ds, np.arange(300), epochs=2, batch_size=128, lr=3e-3, schedule="onecycle", device="cpu", progress=False)
    c = fit(cnn(ds), ds, np.arange(300), TrainRecipe(epochs=2, batch_size=128), lr=3e-3, schedule="onecycle", device="cpu", progress=False)
    assert a.recipe == b.recipe == c.recipe == recipe and a.config == b.config == c.config
    assert weights_equal(a.model, b.model) and weights_equal(a.model, c.model)
    with pytest.raises(TypeError, match="recipe must be a TrainRecipe"): fit(cnn(ds), ds, None, {"epochs": 1}, device="cpu")
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) \['eta'\]"): fit(cnn(ds), ds, epochs=1, eta=0.1, device="cpu")


def test_bad_indices_and_augment(digits):
    ds, te = digits
    with pytest.raises(IndexError, match=r"\[0, 1437\)"):
        fit(cnn(ds), ds, [0, len(ds)], epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="duplicate"):
        fit(cnn(ds), ds, [1, 1, 2], epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="idx is empty"):
        fit(cnn(ds), ds, np.array([], dtype=np.int64), epochs=1, device="cpu", progress=False)
    with pytest.raises(TypeError, match="augment must be"):
        fit(cnn(ds), ds, epochs=1, augment="yes", device="cpu", progress=False)
    with pytest.raises(ValueError, match="idx is empty"):
        evaluate(cnn(ds), te, [])


class CountingCE:
    "A stateful loss_fn: cross-entropy that counts its calls; the count must survive a resume."
    def __init__(self): self.calls = 0
    def __repr__(self): return "CountingCE()"
    def __call__(self, model, x, y):
        self.calls += 1; lg = model(x)
        return torch.nn.functional.cross_entropy(lg, y, reduction="none"), lg
    def state_dict(self): return {"calls": self.calls}
    def load_state_dict(self, st): self.calls = st["calls"]


def test_loss_fn_state_goes_through_the_checkpoint(digits, tmp_path):
    ds, _ = digits
    args = dict(epochs=3, batch_size=256, device="cpu", progress=False, ckpt_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        fit(cnn(ds), ds, callbacks=[Kill(2)], loss_fn=CountingCE(), **args)
    lf = CountingCE()
    tr = fit(cnn(ds), ds, callbacks=[Kill()], loss_fn=lf, **args)
    assert lf.calls == tr.step == 3 * len(tr.loader)
    ref = fit(cnn(ds), ds, device="cpu", progress=False, epochs=3, batch_size=256)   # default CE, same seed
    assert weights_equal(ref.model, tr.model)
