"Attack sanity on digits: ε-balls and pixel range, undefended models break, more steps never help, TRADES, recorders, bad input."
import inspect

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from scoreextra.data import BatchLoader, load_dataset
from scoreextra.models import get_model
from scoreextra.scores import dynamic_uncertainty
from scoreextra.train import fit
from scoreextra.turtle import to_pixels
from scoreextra.adversarial import (AdversarialLoss, EpochEndDURecorder, adversarial_fit,
                                    autoattack_accuracy, frozen_bn_stats, pgd, pixel_model, robust_accuracy,
                                    trades_loss, with_normalization)

torch.set_num_threads(1)   # tiny models: extra threads only add contention on a shared CPU


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits"), load_dataset("digits", "test")


@pytest.fixture(scope="module")
def undefended(data):
    "A digits MLP trained for a few epochs on normalised inputs (clean accuracy ~0.97)."
    ds, _ = data
    m = get_model("mlp", ds.num_classes, ds.in_shape, seed=0, hidden=[64])
    fit(m, ds, epochs=10, batch_size=64, lr=3e-3, progress=False, seed=0)
    return m.eval()


def _batch(ds, n=256):
    x, y, _ = next(iter(BatchLoader(ds, np.arange(n), batch_size=n)))
    return to_pixels(x, ds), y


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 1.0)])
@pytest.mark.parametrize("loss", ["ce", "cw", "kl"])
@pytest.mark.parametrize("start", [True, "normal", False])
def test_perturbation_inside_ball_and_pixel_range(data, undefended, norm, eps, loss, start):
    ds, te = data
    pm = pixel_model(undefended, ds)
    x, y = _batch(te)
    xa = pgd(pm, x, y, eps=eps, steps=5, norm=norm, loss=loss, random_start=start, generator=torch.Generator().manual_seed(0))
    d = (xa - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert size.max().item() <= eps + (1e-6 if norm == "linf" else 1e-5)
    assert xa.min().item() >= 0.0 and xa.max().item() <= 1.0
    assert size.mean().item() > 0.3 * eps   # the attack actually moved


def test_undefended_model_breaks(data, undefended):
    _, te = data
    for norm, eps in (("linf", 0.15), ("l2", 1.0)):
        clean, robust = robust_accuracy(undefended, te, eps=eps, norm=norm, steps=10, step_size=eps / 4)
        assert clean > 0.9 and robust < clean / 2, (norm, clean, robust)
    # the attack must beat random noise of the same size
    x, y = _batch(te, len(te))
    pm = pixel_model(undefended, te)
    noisy = (x + 0.15 * torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))).clamp(0, 1)
    with torch.no_grad(): acc_noise = (pm(noisy).argmax(1) == y).float().mean().item()
    assert acc_noise > robust_accuracy(undefended, te, eps=0.15, steps=10, step_size=0.04)[1] + 0.2


@pytest.mark.parametrize("norm, eps, step", [("linf", 0.05, 0.01), ("l2", 0.5, 0.1)])
@pytest.mark.parametrize("start", [False, True])
def test_more_steps_never_raise_robust_accuracy_with_keep_best(data, undefended, norm, eps, step, start):
    "With keep_best and the same start, 20 steps extend the 5-step trajectory: robust accuracy can only fall."
    _, te = data
    kw = dict(eps=eps, norm=norm, step_size=step, random_start=start, keep_best=True, seed=0)
    r5 = robust_accuracy(undefended, te, steps=5, **kw)[1]
    r20 = robust_accuracy(undefended, te, steps=20, **kw)[1]
    assert r20 <= r5, (r5, r20)


def test_keep_best_loss_is_monotone_per_sample(data, undefended):
    ds, te = data
    pm = pixel_model(undefended, ds)
    x, y = _batch(te)
    loss = lambda xa: F.cross_entropy(pm(xa), y, reduction="none")
    with torch.no_grad():
        l5 = loss(pgd(pm, x, y, eps=0.03, steps=5, step_size=0.01, random_start=False, keep_best=True))
        l20 = loss(pgd(pm, x, y, eps=0.03, steps=20, step_size=0.01, random_start=False, keep_best=True))
        mis5 = pm(pgd(pm, x, y, eps=0.03, steps=5, step_size=0.01, random_start=False, keep_best=True)).argmax(1) != y
    assert (l20[~mis5] >= l5[~mis5] - 1e-6).all()


def test_trades_loss_at_least_natural_part(data, undefended):
    ds, te = data
    pm = pixel_model(undefended, ds).train()
    x, y = _batch(te, 128)
    for norm, eps, ls in (("linf", 0.1, 0.0), ("l2", 1.0, 0.1)):
        loss, logits = trades_loss(pm, x, y, eps=eps, steps=3, norm=norm, beta=5.0, label_smoothing=ls,
                                   generator=torch.Generator().manual_seed(0))
        natural = F.cross_entropy(pm(x), y, reduction="none", label_smoothing=ls)
        assert loss.shape == (128,) and (loss >= natural - 1e-6).all()
        assert (loss - natural).mean() > 1e-3            # the adversarial KL term is not empty
        torch.testing.assert_close(logits, pm(x))
    undefended.eval()


def test_attack_leaves_bn_stats_and_param_grads_alone(data):
    ds, te = data
    cnn = get_model("cnn", ds.num_classes, ds.in_shape, seed=0).train()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    x, y = _batch(te, 64)
    pgd(pixel_model(cnn, ds), x, y, eps=0.1, steps=3)
    for k, v in cnn.state_dict().items(): assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in cnn.parameters())
    assert all(m.track_running_stats for m in cnn.modules() if isinstance(m, nn.BatchNorm2d))


def test_frozen_bn_restores_flag_on_error():
    bn = nn.BatchNorm1d(2)
    with pytest.raises(RuntimeError):
        with frozen_bn_stats(bn): raise RuntimeError("boom")
    assert bn.track_running_stats


def test_normalize_wrapper_equals_model_on_normalised_input(data, undefended):
    ds, te = data
    x, y, _ = next(iter(BatchLoader(te, np.arange(32), batch_size=32)))
    with torch.no_grad():
        torch.testing.assert_close(pixel_model(undefended, ds)(to_pixels(x, ds)), undefended(x), atol=1e-5, rtol=1e-5)
    assert with_normalization(undefended, None, None) is undefended


def test_adversarial_training_raises_robust_accuracy(data, undefended):
    "A few epochs of TRADES (hand-written loop over AdversarialLoss) beat the undefended model under attack."
    ds, te = data
    m = get_model("mlp", ds.num_classes, ds.in_shape, seed=0, hidden=[64])
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    lf = AdversarialLoss(ds, method="trades", eps=0.1, steps=3, beta=5.0)
    loader = BatchLoader(ds, batch_size=64, shuffle=True, seed=0)
    for e in range(6):
        loader.set_epoch(e)
        for x, y, _ in loader:
            loss, _ = lf(m, x, y); opt.zero_grad(); loss.mean().backward(); opt.step()
    kw = dict(eps=0.15, steps=10, step_size=0.04)
    clean_at, rob_at = robust_accuracy(m, te, **kw)
    _, rob_plain = robust_accuracy(undefended, te, **kw)
    assert clean_at > 0.8 and rob_at > rob_plain + 0.1, (clean_at, rob_at, rob_plain)


def test_adversarial_fit_uses_fit_hook_or_says_what_is_missing(data):
    ds, _ = data
    m = get_model("mlp", ds.num_classes, ds.in_shape, seed=0, hidden=[32])
    from scoreextra.train import fit as _fit
    if "loss_fn" not in inspect.signature(_fit).parameters:
        with pytest.raises(NotImplementedError, match="loss_fn"):
            adversarial_fit(m, ds, eps=0.1, epochs=1)
    else:
        tr = adversarial_fit(m, ds, np.arange(200), eps=0.1, steps=2, epochs=2, batch_size=64, progress=False)
        assert len(tr.log) == 2 and np.isfinite(tr.log[-1]["train_loss"])


def test_epoch_end_recorder_matches_batch_du(data):
    ds, _ = data
    m = get_model("mlp", ds.num_classes, ds.in_shape, seed=0, hidden=[32])
    sub = np.arange(1, len(ds), 4)
    rec = EpochEndDURecorder(keep_history=True, window=3)
    adv = EpochEndDURecorder(adversarial=True, eps=0.1, steps=2, step_size=0.05, window=3, keep_history=True)
    tr = fit(m, ds, sub, epochs=5, batch_size=64, lr=3e-3, callbacks=[rec, adv], progress=False)
    assert rec.history.shape == (5, len(sub))
    np.testing.assert_allclose(rec.scores(), dynamic_uncertainty(rec.history, window=3), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(adv.scores(), dynamic_uncertainty(adv.history, window=3), rtol=1e-5, atol=1e-7)
    # the last recorded epoch is the final model's clean true-class softmax on the trained samples (in eval mode)
    tr.model.eval()
    x, y, _ = next(iter(BatchLoader(ds, sub, batch_size=len(sub))))
    with torch.no_grad(): p = torch.softmax(tr.model(x), 1).gather(1, y.view(-1, 1)).squeeze(1).numpy()
    np.testing.assert_allclose(rec.history[-1], p, atol=1e-6)
    assert adv.history[-1].mean() < rec.history[-1].mean()
    # checkpoint state round-trips
    other = EpochEndDURecorder(keep_history=True, window=3)
    other.load_state_dict(rec.state_dict())
    np.testing.assert_array_equal(other.history, rec.history)
    np.testing.assert_allclose(other.scores(), rec.scores())


def test_autoattack_missing_package_message(data, undefended):
    _, te = data
    try:
        import autoattack  # noqa: F401
        pytest.skip("autoattack is installed")
    except ImportError:
        with pytest.raises(ImportError, match="--no-deps"):
            autoattack_accuracy(undefended, te, eps=0.1)


def test_paper_recipes_name_tables_in_the_at_schema():
    "The paper's Table 4 run is an `at` recipe the stages validate as is; the l2 run's unstated attack is refused, not guessed."
    from scoreextra.recipes import PAPER_AT, paper_at
    from scoreextra.adversarial_stages import at_spec
    t4 = at_spec("cifar10", "cifar10_linf_table4")
    assert (t4["method"], t4["model"], t4["beta"], t4["label_smoothing"], t4["batch_size"], t4["epochs"]) == ("trades", "wrn28_10", 5.0, 0.1, 512, 400)
    assert t4["attack"]["norm"] == "linf" and t4["attack"]["eps"] == pytest.approx(8 / 255) and t4["attack"]["step_size"] == pytest.approx(2 / 255)
    assert t4 == at_spec("cifar10", paper_at("cifar10_linf_table4"))
    assert PAPER_AT["cifar10_2m_l2_table5"]["at"]["attack"]["eps"] == pytest.approx(128 / 255)
    with pytest.raises((ValueError, TypeError)):
        at_spec("cifar10", "cifar10_2m_l2_table5")


@pytest.mark.parametrize("kw, match", [
    (dict(eps=-0.1), "eps must be"),
    (dict(eps=float("nan")), "eps must be"),
    (dict(eps=0.1, steps=0), "steps must be"),
    (dict(eps=0.1, steps=2.5), "steps must be"),
    (dict(eps=0.1, norm="l1"), "norm must be"),
    (dict(eps=0.1, loss="hinge"), "loss must be"),
    (dict(eps=0.1, step_size=-1.0), "step_size must be"),
    (dict(eps=0.1, random_start="gauss"), "random_start"),
    (dict(eps=0.1, clip=(1.0, 0.0)), "clip must be"),
])
def test_pgd_bad_inputs(data, undefended, kw, match):
    ds, te = data
    x, y = _batch(te, 8)
    with pytest.raises(ValueError, match=match):
        pgd(pixel_model(undefended, ds), x, y, **kw)


def test_pgd_refuses_normalised_inputs(data, undefended):
    ds, te = data
    x, y, _ = next(iter(BatchLoader(te, np.arange(8), batch_size=8)))
    with pytest.raises(ValueError, match="with_normalization"):
        pgd(undefended, x, y, eps=0.1)


def test_other_bad_inputs(data, undefended):
    ds, te = data
    with pytest.raises(ValueError, match="method"):
        AdversarialLoss(ds, method="mart", eps=0.1)
    with pytest.raises(ValueError, match="norm"):
        robust_accuracy(undefended, te, eps=0.1, norm="linf2")
    with pytest.raises(ValueError, match="beta"):
        x, y = _batch(te, 4); trades_loss(pixel_model(undefended, ds), x, y, eps=0.1, beta=-1.0)
