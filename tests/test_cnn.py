"""The CNN: architecture as published, training, saving, inference folding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hizkit.plugins.cnn import CNN, build_network, fold_batchnorm, parameter_count  # noqa: E402


def test_parameter_count_matches_the_poster():
    assert abs(parameter_count(32) - 1.5e6) / 1.5e6 < 0.05


def test_output_shape_and_downsampling():
    net = build_network(7, 8).eval()
    with torch.no_grad():
        out = net(torch.zeros(3, 7, 64, 64))
    assert out.shape == (3, 3)
    pools = [m for m in net if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3  # 64 px -> 8 px


def test_skip_projection_is_used_when_channels_change():
    net = build_network(7, 8)
    blocks = [m for m in net.modules() if type(m).__name__ == "SpatialResidualBlock"]
    assert [type(b.skip).__name__ for b in blocks] == ["Identity", "Sequential", "Sequential"]
    x = torch.randn(2, 16, 16, 16)
    blocks[1].eval()
    with torch.no_grad():
        base = blocks[1](x)
        blocks[1].skip[0].weight.mul_(2)
        assert not torch.allclose(base, blocks[1](x))  # the projection really runs


def test_batchnorm_folding_is_exact():
    net = build_network(7, 8).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(4, 7, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(fold_batchnorm(net)(x), net(x), atol=1e-5)


def test_training_lowers_the_loss_and_round_trips(tiny, tmp_path):
    clf = CNN(epochs=4, width=4, batch_size=16, seed=0).fit(tiny, tiny)
    losses = [h["train_loss"] for h in clf.history_]
    assert losses[-1] < losses[0]
    proba = clf.predict_proba(tiny)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    clf.save(tmp_path / "m")
    np.testing.assert_allclose(CNN.load(tmp_path / "m").predict_proba(tiny), proba, atol=1e-6)


def test_deterministic_for_a_seed(tiny):
    a = CNN(epochs=1, width=4, seed=3).fit(tiny).predict_proba(tiny)
    b = CNN(epochs=1, width=4, seed=3).fit(tiny).predict_proba(tiny)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_brown_dwarf_measures_change_training(tiny):
    plain = CNN(epochs=1, width=4, seed=0).fit(tiny)
    weighted = CNN(epochs=1, width=4, seed=0, class_weight="balanced", oversample=True).fit(tiny)
    assert not np.allclose(plain.predict_proba(tiny), weighted.predict_proba(tiny))


def test_keep_freed_memory_restores_and_nests():
    from hizkit.plugins.cnn import keep_freed_memory

    with keep_freed_memory(), keep_freed_memory():  # nested: the outer one restores
        x = torch.ones(4, 1024, 1024)
        del x
    with keep_freed_memory():
        pass  # and a second, separate use still works


def test_loss_weights_balance_classes_once():
    from hizkit.plugins.cnn import loss_weights

    counts = np.array([400.0, 400.0, 8.0])
    w = loss_weights(counts, "balanced", oversample=False)
    np.testing.assert_allclose(w * counts, counts.sum() / 3)  # equal total weight per class
    assert loss_weights(counts, "balanced", oversample=True) is None  # sampling balances
    assert loss_weights(counts, None, oversample=False) is None
    assert loss_weights(np.array([5.0, 5.0, 0.0]), "balanced", False)[2] == 0
