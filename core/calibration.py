"""Probabilities that mean what they say: temperature scaling, prior shift, class-wise ECE.

Pure functions on numpy arrays (no plugin, no I/O), for the harness, ``hizkit train`` and
``hizkit predict``:

- :func:`fit_temperature` / :func:`apply_temperature`: temperature scaling (Guo et al.
  2017, "On Calibration of Modern Neural Networks", ICML), one scalar ``T`` dividing the
  log-probabilities, fitted by minimising the (weighted) negative log-likelihood on
  held-out labelled sources;
- :func:`shift_priors`: Bayes' rule from the priors a classifier was trained at to another
  field's, ``p'_k ∝ p_k π'_k / π_k``;
- :func:`em_priors`: the target field's priors estimated from the classifier's outputs on
  it, unlabelled, by EM (Saerens, Latinne & Decaestecker 2002, Neural Computation 14, 21),
  valid when ``p(x | class)`` is the same in training and in the field;
- :func:`classwise_ece`: class-wise expected calibration error of one class (Kull et al.
  2019, "Beyond temperature scaling", NeurIPS);
- :func:`training_prior`: the prior a classifier was trained at (uniform with balanced
  class weights, not the class counts);
- :class:`Calibration`: a fitted temperature with the training prior, applied as
  temperature then prior shift, stored as JSON.

``weights`` are everywhere optional importance weights (e.g. of an enriched simulated
draw back to the sky's rates); ``None`` weighs every row 1. Class indices follow
:data:`hizkit.CLASSES`; a truth of ``-1`` is a source of no class (unlabelled, or a
spurious detection in a field test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from hizkit.dataset import CLASSES
from hizkit.errors import HizkitError

#: probabilities are clipped to at least this before taking logs
EPS = 1e-12
#: temperature search range, as bounds on log T (T from about 0.01 to 100)
LOG_T_BOUNDS = (math.log(0.01), math.log(100.0))
#: a prior estimated by EM never falls below this (a class is never ruled out)
PRIOR_FLOOR = 1e-6


def _proba(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (N, K), not shape {p.shape}")
    return p


def as_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Importance weights checked (shape ``(n,)``, finite, non-negative); None: all 1."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), not {w.shape}")
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError("weights must be finite and non-negative")
    return w


def _prior(prior: Any, k: int, what: str) -> np.ndarray:
    pi = np.asarray(prior, dtype=float)
    if pi.shape != (k,) or not np.all(np.isfinite(pi) & (pi >= 0)) or pi.sum() <= 0:
        raise ValueError(f"{what} must be {k} non-negative numbers, not {prior!r}")
    return pi / pi.sum()


def class_index(cls: int | str) -> int:
    """The column of ``cls`` (a class name of :data:`hizkit.CLASSES` or its index)."""
    if isinstance(cls, str):
        if cls not in CLASSES:
            raise ValueError(f"unknown class {cls!r}; classes are {CLASSES}")
        return CLASSES.index(cls)
    return int(cls)


# ------------------------------------------------------------------ temperature scaling


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: probabilities sharpened (``T < 1``) or softened (``T > 1``)
    by temperature scaling (Guo et al. 2017). ``T = 1`` returns ``p`` (renormalised);
    the ranking of the classes within a row never changes."""
    p = _proba(proba)
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, not {temperature!r}")
    return softmax(np.log(np.clip(p, EPS, 1.0)) / float(temperature), axis=1)


def fit_temperature(
    proba: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> float:
    """The temperature ``T`` minimising the weighted negative log-likelihood of ``y``
    under ``softmax(log p / T)`` (temperature scaling, Guo et al. 2017), found by a
    bounded scalar search on ``log T`` (``scipy.optimize.minimize_scalar``; ``T`` within
    0.01-100). Rows with ``y < 0`` (no class) are ignored.

    ``offset`` (per class) is added to the tempered log-probabilities before the softmax:
    ``log(mix / prior)`` scores the tempered posteriors after Bayes' shift from the prior
    they are calibrated at to the held-out rows' own class mix, so every row counts once
    whatever the mix (:meth:`Calibration.fit`)."""
    p = _proba(proba)
    y = np.asarray(y, dtype=int)
    w = as_weights(weights, len(p))
    keep = (y >= 0) & (w > 0)
    if not keep.any():
        raise ValueError("fit_temperature needs at least one labelled row with weight > 0")
    logp = np.log(np.clip(p[keep], EPS, 1.0))
    y, w = y[keep], w[keep] / w[keep].sum()
    rows = np.arange(len(y))
    shift = np.zeros(p.shape[1]) if offset is None else np.asarray(offset, dtype=float)

    def nll(log_t: float) -> float:
        tempered = logp * math.exp(-log_t) + shift[None, :]
        return float(-(w * log_softmax(tempered, axis=1)[rows, y]).sum())

    res = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


# ------------------------------------------------------------------ priors


def shift_priors(
    proba: np.ndarray, source_prior: np.ndarray, target_prior: np.ndarray
) -> np.ndarray:
    """Posteriors moved from the class priors they were computed at (``source_prior``) to
    ``target_prior`` by Bayes' rule, ``p'_k ∝ p_k π'_k / π_k`` (each row renormalised;
    Saerens et al. 2002). Priors are normalised to sum to 1; a class with
    source prior 0 keeps probability 0."""
    p = _proba(proba)
    k = p.shape[1]
    src = _prior(source_prior, k, "source_prior")
    tgt = _prior(target_prior, k, "target_prior")
    ratio = np.divide(tgt, src, out=np.zeros(k), where=src > 0)
    q = p * ratio[None, :]
    total = q.sum(axis=1, keepdims=True)
    # a row with all its mass on classes the target rules out keeps the target prior
    return np.divide(q, total, out=np.tile(tgt, (len(p), 1)), where=total > 0)


def em_priors(
    proba: np.ndarray,
    source_prior: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    tol: float = 1e-6,
    max_iter: int = 1000,
    floor: float = PRIOR_FLOOR,
) -> tuple[np.ndarray, np.ndarray]:
    """The class priors of the field ``proba`` was computed on, estimated from those
    unlabelled outputs by expectation-maximisation (Saerens, Latinne & Decaestecker 2002,
    "Adjusting the outputs of a classifier to new a priori probabilities", Neural
    Computation 14, 21).

    Starting from ``source_prior`` (the prior ``proba`` is calibrated at), each step
    shifts the outputs to the current estimate (:func:`shift_priors`, the E step) and
    takes the (weighted) mean of the shifted posteriors as the new estimate (M step),
    until no prior moves by more than ``tol`` or after ``max_iter`` steps. Every prior is
    kept at least ``floor`` (then renormalised), so a class is never ruled out by a
    collapse to 0 (which EM could never leave). The estimate is only as good as the
    assumption that ``p(x | class)`` is the same where the classifier was calibrated and
    in the field, and the calibration of ``proba`` at ``source_prior``.

    Returns ``(priors, adjusted)``: the ``(K,)`` estimate and ``proba`` shifted to it.
    """
    p = _proba(proba)
    k = p.shape[1]
    src = _prior(source_prior, k, "source_prior")
    w = as_weights(weights, len(p))
    if w.sum() <= 0:
        raise ValueError("em_priors needs at least one row with weight > 0")
    w = w / w.sum()

    def floored(pi: np.ndarray) -> np.ndarray:
        pi = np.maximum(pi, floor)
        return pi / pi.sum()

    pi = floored(src)
    adjusted = shift_priors(p, src, pi)
    for _ in range(max_iter):
        new = floored(w @ adjusted)
        adjusted = shift_priors(p, src, new)
        done = np.max(np.abs(new - pi)) < tol
        pi = new
        if done:
            break
    return pi, adjusted


def training_prior(
    y: np.ndarray,
    class_weight: str | None = "balanced",
    weights: np.ndarray | None = None,
    n_classes: int = len(CLASSES),
) -> np.ndarray:
    """The class prior a classifier was trained at: with ``class_weight="balanced"`` every
    class present in ``y`` weighs the same, so the prior is uniform over the present
    classes (not the class counts); with ``None`` it is the (weighted) class fractions.
    Rows with ``y < 0`` are ignored; an absent class gets 0."""
    y = np.asarray(y, dtype=int)
    w = as_weights(weights, len(y))
    keep = y >= 0
    counts = np.bincount(y[keep], weights=w[keep], minlength=n_classes)[:n_classes]
    if counts.sum() <= 0:
        raise ValueError("training_prior needs labelled rows")
    if class_weight == "balanced":
        counts = (counts > 0).astype(float)
    elif class_weight is not None:
        raise ValueError(f"class_weight must be 'balanced' or None, not {class_weight!r}")
    return counts / counts.sum()


# ------------------------------------------------------------------ calibration error


def classwise_ece(
    y: np.ndarray,
    proba: np.ndarray,
    cls: int | str,
    weights: np.ndarray | None = None,
    bins: int = 15,
    binning: Literal["width", "mass"] = "width",
) -> float:
    """Class-wise expected calibration error of class ``cls`` (Kull et al. 2019, the
    per-class term of their classwise-ECE): the reliability of ``p_cls`` against the
    indicator ``y == cls``,

        ECE_cls = sum_b (W_b / W) |mean_b(1[y == cls]) - mean_b(p_cls)|,

    weighted means within bin ``b`` of total weight ``W_b``. ``binning="width"`` (the
    default, as Kull et al.): ``bins`` equal-width bins of ``p_cls`` on [0, 1];
    ``"mass"``: equal-mass (weighted quantile) bins, better for a rare class whose
    probabilities crowd near 0. Rows with ``y < 0`` are kept and count as not ``cls``
    (a spurious detection belongs to no class); pass labelled rows only to leave them
    out. Unlike the top-label ECE, it is not made small by a dominant class. NaN when the
    total weight is 0."""
    p = _proba(proba)
    j = class_index(cls)
    y = np.asarray(y, dtype=int)
    w = as_weights(weights, len(p))
    if w.sum() <= 0:
        return float("nan")
    score = np.clip(p[:, j], 0.0, 1.0)
    hit = (y == j).astype(float)
    if binning == "width":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif binning == "mass":
        order = np.argsort(score, kind="stable")
        cw = np.cumsum(w[order])
        cuts = np.searchsorted(cw, cw[-1] * np.arange(1, bins) / bins)
        edges = np.concatenate([[0.0], score[order][np.minimum(cuts, len(cw) - 1)], [1.0]])
        edges = np.unique(edges)
    else:
        raise ValueError(f"binning must be 'width' or 'mass', not {binning!r}")
    idx = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, len(edges) - 2)
    nb = len(edges) - 1
    conf = np.bincount(idx, weights=w * score, minlength=nb)
    acc = np.bincount(idx, weights=w * hit, minlength=nb)
    return float(np.abs(acc - conf).sum() / w.sum())


# ------------------------------------------------------------------ the fitted object


@dataclass(frozen=True)
class Calibration:
    """A classifier's calibration: a temperature (Guo et al. 2017) fitted at the class
    prior it was trained at, and that prior, so its probabilities can be moved to any
    field's priors (:func:`shift_priors`). Stored as JSON with :meth:`to_dict`."""

    temperature: float
    train_prior: tuple[float, ...]

    @classmethod
    def fit(
        cls,
        proba: np.ndarray,
        y: np.ndarray,
        train_prior: np.ndarray,
        weights: np.ndarray | None = None,
        shift: bool = True,
    ) -> Calibration:
        """Fit the temperature on held-out labelled sources (``y < 0`` ignored).

        The probabilities are posteriors at ``train_prior`` (uniform for a classifier
        trained with balanced class weights, see :func:`training_prior`), the held-out
        rows have their own class mix: with ``shift`` (the default) the likelihood
        maximised is that of the tempered posteriors moved by Bayes' rule from
        ``train_prior`` to that mix, each row counted once. (Reweighting the rows to
        ``train_prior`` instead would hang a third of the fit on the two or so
        held-out brown dwarfs.)"""
        p = _proba(proba)
        k = p.shape[1]
        prior = _prior(train_prior, k, "train_prior")
        y = np.asarray(y, dtype=int)
        w = as_weights(weights, len(p))
        offset = None
        if shift:
            keep = y >= 0
            mix = np.bincount(y[keep], weights=w[keep], minlength=k)[:k]
            mix = mix / mix.sum() if mix.sum() > 0 else prior
            with np.errstate(divide="ignore"):
                offset = np.where((mix > 0) & (prior > 0), np.log(mix / prior), -50.0)
        temperature = fit_temperature(p, y, w, offset)
        return cls(temperature=temperature, train_prior=tuple(float(v) for v in prior))

    def apply(self, proba: np.ndarray, target_prior: np.ndarray | None = None) -> np.ndarray:
        """Temperature-scaled probabilities, then shifted from the training prior to
        ``target_prior`` when given (the field's priors: known, or :func:`em_priors`)."""
        p = apply_temperature(proba, self.temperature)
        if target_prior is None:
            return p
        return shift_priors(p, np.asarray(self.train_prior), target_prior)

    def to_dict(self) -> dict[str, Any]:
        """``{"temperature": float, "train_prior": [float, ...]}``, JSON-safe."""
        return {"temperature": float(self.temperature), "train_prior": list(self.train_prior)}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Rebuild from :meth:`to_dict`; anything else raises a one-line
        :class:`hizkit.HizkitError`."""
        if not isinstance(data, dict) or set(data) != {"temperature", "train_prior"}:
            raise HizkitError(
                "calibration must be a table with exactly 'temperature' and 'train_prior', "
                f"not {data!r}"
            )
        t, prior = data["temperature"], data["train_prior"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 < t < math.inf):
            raise HizkitError(f"calibration temperature must be a positive number, not {t!r}")
        if (
            not isinstance(prior, (list, tuple))
            or len(prior) < 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in prior)
            or not all(0 <= v < math.inf for v in prior)
            or not abs(sum(prior) - 1) < 1e-6
        ):
            raise HizkitError(
                "calibration train_prior must be a list of non-negative numbers summing "
                f"to 1, not {prior!r}"
            )
        return cls(temperature=float(t), train_prior=tuple(float(v) for v in prior))
