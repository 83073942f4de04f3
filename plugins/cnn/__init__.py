"""``cnn``: the poster's convolutional network, layer by layer, fast on CPU and GPU.

Architecture (Roberts & Conselice; the authors' model file, with its skip projection made
to work):

- 1x1 conv 7 -> 32, BN, ReLU; 2 x SpectralResidualBlock(32); 1x1 conv 32 -> 64, BN, ReLU;
  2 x SpectralResidualBlock(64); ChannelAttention(64, reduction 8);
- SpatialResidualBlock 64 -> 64, max-pool 2; 64 -> 128, max-pool 2; 128 -> 256, max-pool 2;
- global average pool; 256 -> 512 (BN, ReLU, dropout 0.3) -> 256 (BN, ReLU, dropout 0.15) -> 3.

Kaiming-normal (fan_out) initialisation for convolutions, N(0, 0.01) for linear layers;
Adam (lr 5e-4), cross-entropy, 10 epochs; the validation split picks the best epoch.

Speed (see ``benchmarks/cnn_throughput.py``): glibc kept from unmapping the large
activation buffers after every step (:func:`keep_freed_memory`, the biggest win on CPU),
channels-last memory, mini-batches from one contiguous tensor (no per-sample Python),
random dihedral transforms applied per batch on the tensor, and at inference batch-norm
folded into the convolutions; ``torch.compile`` on CUDA.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import json
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np

import hizkit
from hizkit import CLASSES, Dataset, progress


def _torch():
    import torch

    return torch


def build_network(in_bands: int = 7, width: int = 32, n_classes: int = 3, dropout: float = 0.1):
    """The poster's network; ``width`` scales every channel count (32 = as published)."""
    torch = _torch()
    nn = torch.nn

    class SpectralResidualBlock(nn.Module):
        """Two 1x1 convolutions (BN, ReLU between, spatial dropout) and an identity skip."""

        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.drop = nn.Dropout2d(dropout)
            self.conv2 = nn.Conv2d(c, c, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            out = self.drop(torch.relu(self.bn1(self.conv1(x))))
            return torch.relu(self.bn2(self.conv2(out)) + x)

    class ChannelAttention(nn.Module):
        """Squeeze-and-excitation from average- and max-pooled vectors, one shared MLP."""

        def __init__(self, c: int, reduction: int = 8) -> None:
            super().__init__()
            self.mlp = nn.Sequential(
                nn.Linear(c, c // reduction), nn.ReLU(inplace=True), nn.Linear(c // reduction, c)
            )

        def forward(self, x):
            avg = self.mlp(x.mean(dim=(2, 3)))
            mx = self.mlp(x.amax(dim=(2, 3)))
            return x * torch.sigmoid(avg + mx)[:, :, None, None]

    class SpatialResidualBlock(nn.Module):
        """Two 3x3 convolutions with BN and spatial dropout; a 1x1 conv + BN projection
        on the skip whenever the channel count changes."""

        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.drop = nn.Dropout2d(dropout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.skip = (
                nn.Identity()
                if cin == cout
                else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
            )

        def forward(self, x):
            out = self.drop(torch.relu(self.bn1(self.conv1(x))))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + self.skip(x))

    w = width

    def stem(cin, cout):
        return [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    net = nn.Sequential(
        *stem(in_bands, w),
        SpectralResidualBlock(w),
        SpectralResidualBlock(w),
        *stem(w, 2 * w),
        SpectralResidualBlock(2 * w),
        SpectralResidualBlock(2 * w),
        ChannelAttention(2 * w, 8),
        SpatialResidualBlock(2 * w, 2 * w),
        nn.MaxPool2d(2),
        SpatialResidualBlock(2 * w, 4 * w),
        nn.MaxPool2d(2),
        SpatialResidualBlock(4 * w, 8 * w),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * w, 16 * w),
        nn.BatchNorm1d(16 * w),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(16 * w, 8 * w),
        nn.BatchNorm1d(8 * w),
        nn.ReLU(inplace=True),
        nn.Dropout(0.15),
        nn.Linear(8 * w, n_classes),
    )
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return net


def fold_batchnorm(net):
    """An inference copy with every Conv2d -> BatchNorm2d pair merged into one Conv2d.

    Exact in eval mode (same outputs up to float rounding); saves a pass over every
    activation map.
    """
    torch = _torch()
    nn = torch.nn
    net = copy.deepcopy(net).eval()

    def fuse(conv, bn):
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=True,
        )
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.data = conv.weight.data * scale[:, None, None, None]
        bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.data = (bias - bn.running_mean) * scale + bn.bias
        return fused

    def walk(module):
        names = list(module._modules)
        for i, name in enumerate(names):
            child = module._modules[name]
            if isinstance(child, nn.Conv2d):
                # BN that directly follows in a Sequential
                if i + 1 < len(names) and isinstance(module._modules[names[i + 1]], nn.BatchNorm2d):
                    module._modules[name] = fuse(child, module._modules[names[i + 1]])
                    module._modules[names[i + 1]] = nn.Identity()
                # conv1/bn1, conv2/bn2 attribute pairs inside residual blocks
                bn_name = name.replace("conv", "bn")
                if bn_name != name and isinstance(module._modules.get(bn_name), nn.BatchNorm2d):
                    module._modules[name] = fuse(child, module._modules[bn_name])
                    module._modules[bn_name] = nn.Identity()
            elif child is not None:
                walk(child)

    walk(net)
    return net


_malloc_depth = 0


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


@contextlib.contextmanager
def keep_freed_memory():
    """Let glibc keep freed memory for reuse while the network runs, then give it back.

    glibc serves every allocation above 32 MB (this network's 64x64 activation maps at
    batch 64 are 67 MB) with a fresh ``mmap`` and unmaps it on free, so each training
    step page-faults and zeroes gigabytes: on a 2-core machine a third of the time went
    to the kernel. Serving them from the heap instead (``M_MMAP_MAX = 0``, no trimming)
    made plain eager training 2.1x and inference 2.6x faster on a 2-core CPU
    (benchmarks/cnn_throughput.py) for a higher peak RSS; on exit the defaults come back
    and ``malloc_trim`` returns the memory. A no-op where the C library is not glibc.
    """
    global _malloc_depth
    if _malloc_depth:  # nested (validation inside training): the outer one restores
        yield
        return
    libc = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        yield
        return
    m_trim_threshold, m_mmap_max = -1, -4
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 2**31 - 1)
    _malloc_depth += 1
    try:
        yield
    finally:
        _malloc_depth -= 1
        mallopt(m_mmap_max, 65536)  # glibc's defaults
        mallopt(m_trim_threshold, 128 * 1024)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


def prepare_inputs(cutouts: np.ndarray):
    """float32 NCHW tensor in channels-last memory; missing coverage (NaN) becomes 0."""
    torch = _torch()
    x = torch.from_numpy(np.nan_to_num(cutouts, nan=0.0, posinf=0.0, neginf=0.0))
    return x.contiguous(memory_format=torch.channels_last)


def random_dihedral(x, generator):
    """One random dihedral transform per batch (cheap: a view, no per-sample Python)."""
    torch = _torch()
    k = int(torch.randint(0, 8, (1,), generator=generator))
    x = torch.rot90(x, k % 4, dims=(2, 3))
    if k >= 4:
        x = torch.flip(x, dims=(3,))
    return x.contiguous(memory_format=torch.channels_last)


class CNN(hizkit.Classifier):
    name = "cnn"
    description = "The poster's spectral/spatial residual CNN with channel attention (PyTorch)"
    requires: ClassVar[frozenset] = frozenset({"cutouts"})
    preprocessors: ClassVar[tuple[str, ...]] = ("segment", "normalise")
    test_params: ClassVar[dict] = {"epochs": 2, "width": 4, "batch_size": 16}

    def __init__(
        self,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 5e-4,
        width: int = 32,
        dropout: float = 0.1,
        class_weight: str | None = None,
        oversample: bool = False,
        augment_batches: bool = True,
        select_by: str = "val_loss",
        patience: int | None = None,
        device: str = "auto",
        threads: int | None = None,
        compile: bool | str = "auto",
        seed: int = 0,
    ) -> None:
        """``class_weight='balanced'`` weights the loss by inverse class frequency and
        ``oversample=True`` draws every class equally often: the brown-dwarf measures
        (use one; with both, the weighting is redundant and left out).
        ``augment_batches`` applies one random dihedral transform to each training batch.
        ``select_by`` ('val_loss' or 'val_balanced_accuracy') picks the kept epoch;
        ``patience`` stops early after that many epochs without improvement.
        ``compile`` trains through ``torch.compile`` (True), never (False), or ("auto")
        on CUDA only: on a CPU, once glibc keeps freed memory (:func:`keep_freed_memory`),
        compiled training steps are no faster (benchmarks/cnn_throughput.py) and
        compiling costs tens of seconds. Should
        compilation fail (no C++ toolchain), training continues eagerly."""
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.width = width
        self.dropout = dropout
        self.class_weight = class_weight
        self.oversample = oversample
        self.augment_batches = augment_batches
        self.select_by = select_by
        self.patience = patience
        self.device = device
        self.threads = threads
        self.compile = compile
        self.seed = seed

    def _device(self):
        torch = _torch()
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def validate_params(self) -> None:
        """Parameter values checked before any work (the configuration calls this)."""
        if self.select_by not in ("val_loss", "val_balanced_accuracy"):
            raise hizkit.HizkitError("cnn: select_by must be val_loss or val_balanced_accuracy")
        if self.class_weight not in (None, "balanced"):
            raise hizkit.HizkitError("cnn: class_weight must be None or 'balanced'")
        for key in ("epochs", "batch_size", "width"):
            if getattr(self, key) < 1:
                raise hizkit.HizkitError(f"cnn: {key} must be at least 1, got {getattr(self, key)}")
        if not self.lr > 0:
            raise hizkit.HizkitError(f"cnn: lr must be positive, got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise hizkit.HizkitError(f"cnn: dropout must lie in [0, 1), got {self.dropout}")

    def _check(self, data: Dataset) -> None:
        if data.cutouts is None:
            raise hizkit.HizkitError("cnn needs cutouts; this dataset has none")
        self.validate_params()

    def fit(self, train: Dataset, valid: Dataset | None = None) -> CNN:
        with keep_freed_memory():
            return self._fit(train, valid)

    def _fit(self, train: Dataset, valid: Dataset | None) -> CNN:
        torch = _torch()
        self._check(train)
        torch.manual_seed(self.seed)
        if self.threads:
            torch.set_num_threads(self.threads)
        device = self._device()
        gen = torch.Generator().manual_seed(self.seed)
        x = prepare_inputs(train.cutouts)
        y = torch.from_numpy(train.y.astype(np.int64))
        counts = np.bincount(train.y, minlength=len(CLASSES)).astype(float)
        w = loss_weights(counts, self.class_weight, self.oversample)
        weight = None if w is None else torch.tensor(w, dtype=torch.float32, device=device)
        net = build_network(x.shape[1], self.width, len(CLASSES), self.dropout).to(device)
        net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        use_compile = self.compile is True or (self.compile == "auto" and device.type == "cuda")
        model = torch.compile(net) if use_compile else net
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        sample_p = None
        if self.oversample:
            per = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0)[train.y]
            sample_p = torch.tensor(per / per.sum(), dtype=torch.float64)
        n = len(train)
        best_state, best_score, stale = None, -np.inf, 0
        self.history_: list[dict[str, float]] = []
        for epoch in progress.track(range(self.epochs), "cnn epochs"):
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
                    xb = random_dihedral(xb, gen)
                xb, yb = xb.to(device, non_blocking=True), y[idx].to(device)
                opt.zero_grad(set_to_none=True)
                try:
                    logits = model(xb)
                except Exception as exc:  # torch.compile needs a working C++ toolchain
                    if model is net:
                        raise
                    progress.log(f"cnn: torch.compile unavailable ({type(exc).__name__}); eager")
                    model = net
                    logits = model(xb)
                loss = loss_fn(logits, yb)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                seen += len(idx)
            record = {"epoch": epoch + 1, "train_loss": total / max(seen, 1)}
            if valid is not None and len(valid):
                proba = self._predict(net, valid.cutouts)
                yv = valid.y
                record["val_loss"] = float(
                    -np.mean(np.log(np.clip(proba[np.arange(len(yv)), yv], 1e-12, 1)))
                )
                pred = proba.argmax(1)
                recalls = [
                    np.mean(pred[yv == k] == k) for k in range(len(CLASSES)) if (yv == k).any()
                ]
                record["val_balanced_accuracy"] = float(np.mean(recalls))
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

    def _predict(self, net, cutouts: np.ndarray, fold: bool = True, batch: int = 256) -> np.ndarray:
        torch = _torch()
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        model = fold_batchnorm(net) if fold else net
        x = prepare_inputs(cutouts)
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                logits = model(x[start : start + batch].to(device))
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        net.train(was_training)
        return np.concatenate(out).astype(float) if out else np.zeros((0, len(CLASSES)))

    def predict_proba(self, data: Dataset) -> np.ndarray:
        self._check(data)
        with keep_freed_memory():
            return self._predict(self.net_, data.cutouts)

    def _save_state(self, directory: Path) -> None:
        torch = _torch()
        torch.save(self.net_.state_dict(), directory / "model.pt")
        (directory / "state.json").write_text(
            json.dumps({"in_bands": self.in_bands_, "history": self.history_})
        )

    def _load_state(self, directory: Path) -> None:
        torch = _torch()
        meta = json.loads((directory / "state.json").read_text())
        net = build_network(meta["in_bands"], self.width, len(CLASSES), self.dropout)
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        self.net_ = net.to(self._device()).to(memory_format=torch.channels_last).eval()
        self.in_bands_ = meta["in_bands"]
        self.history_ = meta["history"]


def parameter_count(width: int = 32) -> int:
    return sum(p.numel() for p in build_network(7, width).parameters())


@hizkit.hookimpl
def hizkit_register_classifiers() -> list[type[hizkit.Classifier]]:
    return [CNN]


__all__ = [
    "CNN",
    "build_network",
    "fold_batchnorm",
    "keep_freed_memory",
    "loss_weights",
    "parameter_count",
]
