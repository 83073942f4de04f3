"""The CNN: architecture as published, training, saving, inference folding."""

from __future__ import annotations

import numpy as np
import pytest

import hizkit

torch = pytest.importorskip("torch")

from hizkit.plugins.cnn import CNN, build_network, fold_batchnorm, parameter_count  # noqa: E402


def test_parameter_count_matches_the_poster():
    assert abs(parameter_count(32) - 1.5e6) / 1.5e6 < 0.05


def test_output_shape_and_downsampling():
    net = build_network(7, 8).eval()
    with torch.no_grad():
        out = net(torch.zeros(3, 7, 64, 64))
    assert out.shape == (3, 3)
    pools = [m for m in net.modules() if isinstance(m, torch.nn.MaxPool2d)]
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


def test_keep_freed_memory_restores_glibc_defaults_once(monkeypatch):
    from hizkit.plugins.cnn import memory

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))

        def malloc_trim(self, pad):
            calls.append(("trim", pad))

    monkeypatch.setattr(memory, "_libc", FakeLibc)
    with memory.keep_freed_memory(), memory.keep_freed_memory():  # nested: outer restores
        assert calls == [(memory.M_MMAP_MAX, 0), (memory.M_TRIM_THRESHOLD, 2**31 - 1)]
    assert calls[2:] == [
        (memory.M_MMAP_MAX, memory.DEFAULT_MMAP_MAX),
        (memory.M_TRIM_THRESHOLD, memory.DEFAULT_TRIM_THRESHOLD),
        ("trim", 0),
    ]
    calls.clear()
    with pytest.raises(ValueError), memory.keep_freed_memory():
        raise ValueError  # an error inside still restores the defaults
    assert calls[-3][1] == memory.DEFAULT_MMAP_MAX and calls[-1] == ("trim", 0)
    assert memory._depth == 0


def test_keep_freed_memory_runs_on_the_real_allocator():
    """On glibc itself: inside, a buffer above the largest mmap threshold (32 MB) comes
    from the heap, not a fresh mapping; after, the defaults are back and it is mapped."""
    import ctypes

    from hizkit.plugins.cnn import keep_freed_memory, memory

    libc = memory._libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
            )
        ]  # fmt: skip

    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 2**20

    def mapped_by_one_malloc() -> int:
        """Bytes in mmapped chunks that one ``size`` allocation adds."""
        before = libc.mallinfo2().hblkhd
        ptr = libc.malloc(size)
        assert ptr
        try:
            return libc.mallinfo2().hblkhd - before
        finally:
            libc.free(ptr)

    with keep_freed_memory():
        x = torch.ones(4, 1024, 1024)  # 16 MB through torch's allocator too
        del x
        assert mapped_by_one_malloc() == 0  # from the heap, kept for reuse
    assert memory._depth == 0
    assert mapped_by_one_malloc() >= size  # glibc's defaults back: mapped again


def test_learning_rate_schedules():
    from hizkit.plugins.cnn import lr_at

    lrs = [lr_at(s, 100, 1e-3, "onecycle") for s in range(100)]
    peak = int(np.argmax(lrs))
    assert 25 <= peak <= 35 and np.isclose(max(lrs), 1e-3, rtol=0.02)
    assert np.all(np.diff(lrs[: peak + 1]) > 0) and np.all(np.diff(lrs[peak:]) <= 0)
    assert lrs[0] == pytest.approx(1e-3 / 25) and lrs[-1] == pytest.approx(1e-7)
    assert {lr_at(s, 100, 5e-4, "constant") for s in range(100)} == {5e-4}
    cos = [lr_at(s, 100, 1e-3, "cosine") for s in range(100)]
    assert cos[0] == 0 and cos[-1] == pytest.approx(0, abs=1e-12) and max(cos) > 0.99e-3


def test_full_dihedral_averaging_makes_predictions_rotation_invariant(tiny):
    from hizkit.plugins.augment import dihedral

    clf = CNN(epochs=1, width=4, batch_size=16, tta=8).fit(tiny)
    with torch.no_grad():  # sharpen the nearly uniform one-epoch outputs
        clf.net_.head[-1].weight.mul_(300)
    turned = tiny.replace(cutouts=np.ascontiguousarray(dihedral(tiny.cutouts, 5)))
    np.testing.assert_allclose(clf.predict_proba(turned), clf.predict_proba(tiny), atol=1e-4)
    clf.tta = 1
    assert np.abs(clf.predict_proba(turned) - clf.predict_proba(tiny)).max() > 1e-3


def test_bf16_training_runs_and_agrees_roughly(tiny):
    a = CNN(epochs=1, width=4, batch_size=16, precision="fp32").fit(tiny).predict_proba(tiny)
    b = CNN(epochs=1, width=4, batch_size=16, precision="bf16").fit(tiny).predict_proba(tiny)
    np.testing.assert_allclose(b.sum(axis=1), 1, atol=1e-4)
    assert np.mean(a.argmax(1) == b.argmax(1)) > 0.8


def test_history_is_the_declared_diagnostic(tiny):
    clf = CNN(epochs=2, width=4, batch_size=16).fit(tiny, tiny)
    history = clf.diagnostics().history
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_loss", "val_loss", "val_balanced_accuracy", "lr"} <= set(history[0])


def test_hybrid_reads_the_photometry_and_round_trips(tiny, tmp_path):
    from hizkit.plugins.cnn import HybridCNN

    clf = HybridCNN(epochs=2, width=4, batch_size=16).fit(tiny)
    proba = clf.predict_proba(tiny)
    clf.save(tmp_path / "h")
    np.testing.assert_allclose(HybridCNN.load(tmp_path / "h").predict_proba(tiny), proba, atol=1e-6)
    brighter = tiny.catalog.copy()
    for band in tiny.bands:
        brighter[f"flux_{band}"] *= np.linspace(0.2, 5, len(brighter))
    assert not np.allclose(clf.predict_proba(tiny.replace(catalog=brighter)), proba)
    bare = tiny.replace(catalog=tiny.catalog[["id", "ra", "dec", "label"]])
    with pytest.raises(hizkit.HizkitError, match="photometry"):
        clf.predict_proba(bare)


def test_loss_weights_balance_classes_once():
    from hizkit.plugins.cnn import loss_weights

    counts = np.array([400.0, 400.0, 8.0])
    w = loss_weights(counts, "balanced", oversample=False)
    np.testing.assert_allclose(w * counts, counts.sum() / 3)  # equal total weight per class
    assert loss_weights(counts, "balanced", oversample=True) is None  # sampling balances
    assert loss_weights(counts, None, oversample=False) is None
    assert loss_weights(np.array([5.0, 5.0, 0.0]), "balanced", False)[2] == 0


def test_micro_batches_cover_the_batch_without_singletons():
    from hizkit.plugins.cnn import chunks

    for n in range(2, 130):
        for size in (4, 5, 16, 32, 64):
            parts = chunks(n, size)
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert [b for _, b in parts[:-1]] == [a for a, _ in parts[1:]]
            assert all(b - a <= size for a, b in parts)
            assert all(b - a >= 2 for a, b in parts)


def test_micro_batched_training_runs_and_small_values_are_refused(tiny):
    proba = CNN(epochs=1, width=4, batch_size=16, micro_batch=5).fit(tiny).predict_proba(tiny)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(hizkit.HizkitError, match="micro_batch"):
        CNN(micro_batch=3).validate_params()
