"""``cnn``: the poster's convolutional network, layer by layer, fast on CPU and GPU;
``cnn_hybrid``: the same network with the catalog photometry joining its dense head.

Architecture (:mod:`.network`; Roberts & Conselice's model file with its skip projection
made to work): 1x1 conv 7 -> 32, BN, ReLU; 2 x SpectralResidualBlock(32); 1x1 conv
32 -> 64; 2 x SpectralResidualBlock(64); ChannelAttention(64, reduction 8);
SpatialResidualBlock 64 -> 64, 64 -> 128, 128 -> 256, each followed by max-pool 2; global
average pool; 256 -> 512 (BN, ReLU, dropout 0.3) -> 256 (BN, ReLU, dropout 0.15) -> 3.
Kaiming-normal (fan_out) initialisation for convolutions, N(0, 0.01) for linear layers.

Training. The poster used Adam at a constant 5e-4 for 10 epochs over 8x dihedrally
augmented data, unweighted cross-entropy (``hizkit bench --config poster`` reproduces it:
``schedule='constant'``, ``lr=5e-4``, ``weight_decay=0``, ``class_weight=None`` plus the
``augment`` preprocessor). The default here spends the same kind of budget better: a
one-cycle learning rate (warm-up to ``lr``, cosine decay; Smith & Topin 2019) with AdamW,
one random dihedral transform per batch instead of eight stored copies, the validation
split choosing the kept epoch, and the brown-dwarf measure on: a class-balanced loss
(every class the same total weight), with the simulated brown dwarfs that the default
survey adds to the training part (``n_extra_brown_dwarfs``).

Speed (``benchmarks/cnn_throughput.py``): glibc kept from unmapping the large activation
buffers (:func:`.memory.keep_freed_memory`, the biggest win on CPU), channels-last
memory, mini-batches from one contiguous tensor, the dihedral transform applied per batch
on the tensor, batch-norm folded into the convolutions at inference, bf16 autocast where
the hardware has bf16 units (``precision='auto'``: CUDA, AVX512-BF16/AMX CPUs; fp32
elsewhere, where bf16 is emulated and slower) and ``torch.compile`` on CUDA.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import ClassVar

import numpy as np

import hizkit
from hizkit import CLASSES, Dataset, progress
from hizkit.calibration import training_prior
from hizkit.metrics import headline
from hizkit.plugins.cnn.memory import keep_freed_memory

SCHEDULES = ("onecycle", "cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16")


def _network():
    from hizkit.plugins.cnn import network

    return network


def loss_weights(counts: np.ndarray, class_weight: str | None, oversample: bool):
    """Per-class cross-entropy weights (None: unweighted) for training-set ``counts``.

    ``'balanced'`` gives each present class the same total weight. Oversampling already
    balances the classes a batch sees; weighting the loss on top would count the rare
    class twice (measured: every source became a brown dwarf), so with oversampling the
    weights follow the sampled, balanced distribution: none.
    """
    if class_weight != "balanced" or oversample:
        return None
    return hizkit.balanced_class_weights(counts)


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` bounds of near-equal parts of ``range(n)``, none above ``size``
    (near-equal, so no part is left with a single sample for batch-norm)."""
    parts = -(-n // size)
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def lr_at(step: int, total: int, peak: float, schedule: str, warmup: float = 0.3) -> float:
    """The learning rate of training step ``step`` of ``total``.

    ``onecycle``: linear warm-up from peak/25 over the first ``warmup`` of the steps, then
    cosine decay to peak/1e4 (Smith & Topin 2019); ``cosine``: one epoch-like 5 % warm-up,
    then cosine to zero; ``constant``: ``peak`` throughout (the poster's Adam).
    """
    if schedule == "constant" or total <= 1:
        return peak
    t = step / (total - 1)
    if schedule == "cosine":
        warmup = 0.05
        start, end = 0.0, 0.0
    else:
        start, end = peak / 25, peak / 1e4
    if t < warmup:
        return start + (peak - start) * t / warmup
    u = (t - warmup) / (1 - warmup)
    return end + (peak - end) * 0.5 * (1 + np.cos(np.pi * u))


class CNN(hizkit.Classifier):
    name = "cnn"
    description = "The poster's spectral/spatial residual CNN with channel attention (PyTorch)"
    requires: ClassVar[frozenset] = frozenset({"cutouts"})
    preprocessors: ClassVar[tuple[str, ...]] = ("segment", "normalise")
    test_params: ClassVar[dict] = {"epochs": 2, "width": 4, "batch_size": 16}
    #: catalog values joining the dense head (the hybrid variant), or none
    photometry: ClassVar[bool] = False

    def __init__(
        self,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 2e-3,
        schedule: str = "onecycle",
        weight_decay: float = 1e-4,
        width: int = 32,
        dropout: float = 0.1,
        class_weight: str | None = "balanced",
        oversample: bool = False,
        augment_batches: bool = True,
        select_by: str = "val_loss",
        patience: int | None = None,
        tta: int = 1,
        micro_batch: int | None = None,
        precision: str = "auto",
        device: str = "auto",
        threads: int | None = None,
        compile: bool | str = "auto",
        seed: int = 0,
    ) -> None:
        """``lr`` is the peak learning rate of ``schedule`` ('onecycle', 'cosine' or
        'constant', see :func:`lr_at`); ``weight_decay`` > 0 trains with AdamW, 0 with Adam.
        ``class_weight='balanced'`` (None or 'none': unweighted) weights the loss by
        inverse class frequency and ``oversample=True`` draws every class equally often:
        the brown-dwarf measures (use one; with both, the weighting is redundant and left out).
        ``augment_batches`` applies one random dihedral transform to each training batch.
        ``select_by`` ('val_loss' or 'val_balanced_accuracy') picks the kept epoch;
        ``patience`` stops early after that many epochs without improvement.
        ``tta`` averages the probabilities over that many dihedral transforms (1..8) at
        prediction. ``micro_batch``: the most samples that pass through the network at
        once; a larger training batch accumulates its gradient over micro-batches (same
        update, batch-norm statistics per micro-batch). None: 16 on a CPU, where batch 64
        held 3.8 GB, 32 2.6 GB and 16 1.7 GB at the same speed (fit + predict of 384 + 256
        sources), the whole batch (256 to predict) on CUDA.
        ``precision``: 'fp32', 'bf16' (autocast) or 'auto': bf16 only on CPUs with bf16
        matrix units (AVX512-BF16/AMX, see :func:`.network.bf16_supported`); fp32 on
        CUDA, where bf16 did not pay for this small network (H200, batch 64: 0.99x
        inference, 1.06x training) and on other CPUs, where it is emulated (0.2x).
        ``compile`` trains through ``torch.compile`` (True), never (False), or ("auto")
        on CUDA when the run is long enough to repay compiling (>= 500,000 sample-epochs:
        on an H200 it took 26 s for 1.35x faster steps); on a CPU, once glibc keeps freed
        memory, compiled steps are no faster. Should compilation fail (no C++ toolchain),
        training continues eagerly."""
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.width = width
        self.dropout = dropout
        self.class_weight = class_weight
        self.oversample = oversample
        self.augment_batches = augment_batches
        self.select_by = select_by
        self.patience = patience
        self.tta = tta
        self.micro_batch = micro_batch
        self.precision = precision
        self.device = device
        self.threads = threads
        self.compile = compile
        self.seed = seed

    def _device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def validate_params(self) -> None:
        """Parameter values checked before any work (the configuration calls this)."""
        choices = {
            "select_by": ("val_loss", "val_balanced_accuracy"),
            "class_weight": (None, "none", "balanced"),
            "schedule": SCHEDULES,
            "precision": PRECISIONS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                shown = ", ".join(repr(a) for a in allowed)
                raise hizkit.HizkitError(
                    f"{self.name}: {key} must be one of {shown}, got {getattr(self, key)!r}"
                )
        for key in ("epochs", "batch_size", "width"):
            if getattr(self, key) < 1:
                raise hizkit.HizkitError(
                    f"{self.name}: {key} must be at least 1, got {getattr(self, key)}"
                )
        if self.micro_batch is not None and self.micro_batch < 4:
            raise hizkit.HizkitError(  # near-equal parts of >= 4 never leave one sample alone
                f"{self.name}: micro_batch must be at least 4 (batch-norm), got {self.micro_batch}"
            )
        if not 1 <= self.tta <= 8:
            raise hizkit.HizkitError(f"{self.name}: tta must lie in 1..8, got {self.tta}")
        if not self.lr > 0:
            raise hizkit.HizkitError(f"{self.name}: lr must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise hizkit.HizkitError(
                f"{self.name}: weight_decay must not be negative, got {self.weight_decay}"
            )
        if not 0 <= self.dropout < 1:
            raise hizkit.HizkitError(f"{self.name}: dropout must lie in [0, 1), got {self.dropout}")

    def _check(self, data: Dataset) -> None:
        if data.cutouts is None:
            raise hizkit.HizkitError(f"{self.name} needs cutouts; this dataset has none")
        if self.photometry and not data.has_photometry:
            raise hizkit.HizkitError(f"{self.name} needs catalog photometry; this dataset has none")
        self.validate_params()

    def _bf16(self, device) -> bool:
        if self.precision == "auto":
            return device.type == "cpu" and _network().bf16_supported(device)
        return self.precision == "bf16"

    def _micro(self, device, batch: int) -> int:
        if self.micro_batch is not None:
            return self.micro_batch
        return batch if device.type == "cuda" else 16

    def _autocast(self, device):
        import torch

        if not self._bf16(device):
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    # -- the hybrid's catalog inputs ------------------------------------------------
    def _tabular(self, data: Dataset):
        """Standardised colours + reddest magnitude (None unless the hybrid variant)."""
        if not self.photometry:
            return None
        import torch

        x = (hizkit.colour_features(data, fill=self.fill_) - self.mean_) / self.scale_
        return torch.from_numpy(x.astype(np.float32))

    def _fit_tabular(self, train: Dataset) -> int:
        if not self.photometry:
            return 0
        raw = hizkit.colour_features(train)
        self.fill_ = hizkit.column_fill(raw)
        x = hizkit.impute(raw, self.fill_)
        self.mean_, self.scale_ = x.mean(axis=0), x.std(axis=0) + 1e-9
        return x.shape[1]

    # -- training -------------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> CNN:
        with keep_freed_memory():
            return self._fit(train, valid)

    def _fit(self, train: Dataset, valid: Dataset | None) -> CNN:
        import torch

        net_mod = _network()
        self._check(train)
        torch.manual_seed(self.seed)
        if self.threads:
            torch.set_num_threads(self.threads)
        device = self._device()
        gen = torch.Generator().manual_seed(self.seed)
        x = net_mod.prepare_inputs(train.cutouts)
        y = torch.from_numpy(train.y.astype(np.int64))
        n_tab = self._fit_tabular(train)
        tab = self._tabular(train)
        counts = np.bincount(train.y, minlength=len(CLASSES)).astype(float)
        w = loss_weights(counts, self.class_weight, self.oversample)
        weight = None if w is None else torch.tensor(w, dtype=torch.float32, device=device)
        net = net_mod.build_network(x.shape[1], self.width, len(CLASSES), self.dropout, n_tab)
        net = net.to(device).to(memory_format=torch.channels_last)
        if self.weight_decay > 0:
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        n = len(train)
        use_compile = self.compile is True or (
            self.compile == "auto" and device.type == "cuda" and self.epochs * n >= 500_000
        )
        model = torch.compile(net) if use_compile else net
        # summed, then divided by the batch's total weight: micro-batches add up to the
        # batch's weighted mean exactly
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight, reduction="sum")
        micro = self._micro(device, self.batch_size)
        sample_p = None
        if self.oversample:
            per = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0)[train.y]
            sample_p = torch.tensor(per / per.sum(), dtype=torch.float64)
        steps_per_epoch = sum(
            1 for s in range(0, n, self.batch_size) if min(self.batch_size, n - s) >= 2
        )
        total_steps, step = self.epochs * steps_per_epoch, 0
        best_state, best_score, stale = None, -np.inf, 0
        self.history_: list[dict[str, float]] = []
        for epoch in progress.track(range(self.epochs), f"{self.name} epochs"):
            net.train()
            order = (
                torch.multinomial(sample_p, n, replacement=True, generator=gen)
                if sample_p is not None
                else torch.randperm(n, generator=gen)
            )
            total, seen = 0.0, 0
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                if idx.numel() < 2:
                    continue  # BatchNorm needs two samples
                xb = x[idx]
                if self.augment_batches:
                    xb = net_mod.random_dihedral(xb, gen)
                xb, yb = xb.to(device, non_blocking=True), y[idx].to(device)
                tb = None if tab is None else tab[idx].to(device)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total_steps, self.lr, self.schedule)
                opt.zero_grad(set_to_none=True)
                denom = float(len(idx)) if weight is None else float(weight[yb].sum())
                batch_loss = 0.0
                for a, b in chunks(len(idx), micro):
                    part_t = None if tb is None else tb[a:b]
                    with self._autocast(device):
                        try:
                            logits = model(xb[a:b], part_t)
                        except Exception as exc:  # torch.compile needs a C++ toolchain
                            if model is net:
                                raise
                            progress.log(f"cnn: torch.compile unavailable ({type(exc).__name__})")
                            model = net
                            logits = model(xb[a:b], part_t)
                        loss = loss_fn(logits.float(), yb[a:b]) / denom
                    loss.backward()
                    batch_loss += loss.item()
                opt.step()
                step += 1
                total += batch_loss * len(idx)
                seen += len(idx)
            record = {
                "epoch": epoch + 1,
                "train_loss": total / max(seen, 1),
                "lr": lr_at(max(step - 1, 0), total_steps, self.lr, self.schedule),
            }
            if valid is not None and len(valid):
                proba = self._predict(net, valid, tta=1)
                yv = valid.y
                record["val_loss"] = float(
                    -np.mean(np.log(np.clip(proba[np.arange(len(yv)), yv], 1e-12, 1)))
                )
                record["val_balanced_accuracy"] = headline(yv, proba).metrics["balanced_accuracy"]
                score = (
                    -record["val_loss"] if self.select_by == "val_loss" else record[self.select_by]
                )
                if score > best_score:
                    best_score, stale = score, 0
                    best_state = copy.deepcopy(net.state_dict())
                    record["kept"] = 1.0
                else:
                    stale += 1
            self.history_.append(record)
            if self.patience is not None and stale >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.net_ = net.eval()
        self.in_bands_ = int(x.shape[1])
        return self

    # -- prediction -----------------------------------------------------------------
    def _predict(self, net, data: Dataset, tta: int) -> np.ndarray:
        import torch

        net_mod = _network()
        device = next(net.parameters()).device
        batch = self._micro(device, 256)
        was_training = net.training
        model = net_mod.fold_batchnorm(net)
        x = net_mod.prepare_inputs(data.cutouts)
        tab = self._tabular(data)
        out = []
        with torch.inference_mode(), self._autocast(device):
            for start in range(0, len(x), batch):
                xb = x[start : start + batch].to(device)
                tb = None if tab is None else tab[start : start + batch].to(device)
                p = sum(
                    torch.softmax(model(net_mod.dihedral(xb, k), tb).float(), dim=1)
                    for k in range(tta)
                )
                out.append((p / tta).cpu().numpy())
        net.train(was_training)
        return np.concatenate(out).astype(float) if out else np.zeros((0, len(CLASSES)))

    def predict_proba(self, data: Dataset) -> np.ndarray:
        self._check(data)
        with keep_freed_memory():
            return self._predict(self.net_, data, self.tta)

    def training_prior(self, y: np.ndarray) -> np.ndarray:
        """Uniform when the loss is class-balanced or the classes oversampled."""
        equal = self.class_weight == "balanced" or self.oversample
        return training_prior(y, "balanced" if equal else None)

    def diagnostics(self):
        """The learning curve (per-epoch losses, validation balanced accuracy, lr)."""
        return hizkit.Diagnostics(history=[dict(r) for r in self.history_])

    # -- persistence ----------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        import torch

        torch.save(self.net_.state_dict(), directory / "model.pt")
        state = {"in_bands": self.in_bands_, "history": self.history_}
        if self.photometry:
            state |= {k: getattr(self, f"{k}_").tolist() for k in ("fill", "mean", "scale")}
        (directory / "state.json").write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        import torch

        meta = json.loads((directory / "state.json").read_text())
        n_tab = 0
        if self.photometry:
            for k in ("fill", "mean", "scale"):
                setattr(self, f"{k}_", np.array(meta[k]))
            n_tab = len(meta["mean"])
        net = _network().build_network(
            meta["in_bands"], self.width, len(CLASSES), self.dropout, n_tab
        )
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        self.net_ = net.to(self._device()).to(memory_format=torch.channels_last).eval()
        self.in_bands_ = meta["in_bands"]
        self.history_ = meta["history"]


class HybridCNN(CNN):
    """Beyond the poster: the same network, with the catalog's colours and reddest-band
    magnitude (standardised, missing values filled with training medians) passing through
    one dense layer and joining the pooled image features before the head."""

    name = "cnn_hybrid"
    description = "The poster's CNN with catalog photometry joining its dense head (hybrid)"
    requires: ClassVar[frozenset] = frozenset({"cutouts", "photometry"})
    photometry: ClassVar[bool] = True


def __getattr__(name: str):
    """The network helpers, imported (with torch) only when asked for."""
    if name in ("build_network", "fold_batchnorm", "parameter_count"):
        return getattr(_network(), name)
    raise AttributeError(name)


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [CNN, HybridCNN]


__all__ = [
    "CNN",
    "HybridCNN",
    "build_network",
    "fold_batchnorm",
    "keep_freed_memory",
    "loss_weights",
    "lr_at",
    "parameter_count",
]
