"""Purity and completeness of candidate lists: weighted counts with Wilson intervals,
rates versus threshold, purity at another field's priors, and selection at a stated purity.

Pure functions on numpy arrays (no plugin, no I/O), for the field section of ``hizkit
bench`` and for ``hizkit train`` / ``hizkit predict --min-purity``.

Conventions:

- ``truth`` holds class indices of :data:`hizkit.CLASSES`; ``-1`` is a source of no class
  (a spurious detection in a field test), called ``"other"`` here. It is never a member of
  a list's class, so it always counts against purity, and it counts as a catastrophic
  interloper.
- ``weights`` are optional importance weights (an enriched simulated draw weighted back to
  the sky's rates); ``None`` weighs every row 1. Fractions are weighted; their intervals
  use Kish's effective sample size (:func:`weighted_fraction`).
- ``cls`` is a class name or its index.
- Intervals are 68 % (``z = 1``, one sigma) unless ``z`` says otherwise.
- A fraction with nothing to divide by is NaN (JSON: write it as null), never 0 or 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hizkit.calibration import as_weights, class_index
from hizkit.dataset import CLASSES, Z_HIGH

#: true-z width of the band across the class boundary whose interlopers are "scatter"
#: rather than catastrophic (for the high-z list: low-z galaxies at 3 <= z < 4)
SCATTER_DZ = 1.0
#: the name of the "no class" row / truth -1 (spurious detections)
OTHER = "other"


def _class_name(j: int) -> str:
    return CLASSES[j] if 0 <= j < len(CLASSES) else OTHER


# ------------------------------------------------------------------ fractions


def wilson_interval(successes: float, n: float, z: float = 1.0) -> tuple[float, float]:
    """The Wilson (1927) score interval of a binomial fraction ``successes / n`` at ``z``
    standard deviations (``z = 1``: 68 %; ``1.96``: 95 %). ``successes`` and ``n`` may
    be non-integer (weighted counts scaled to an effective sample size). ``(nan, nan)``
    when ``n <= 0``. Unlike the normal approximation it stays inside [0, 1] and is not
    empty at 0 or ``n`` successes."""
    n = float(n)
    if not n > 0:
        return (float("nan"), float("nan"))
    p = min(max(float(successes) / n, 0.0), 1.0)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(centre - half, 0.0), min(centre + half, 1.0))


def weighted_fraction(
    hit: np.ndarray, weights: np.ndarray | None = None, z: float = 1.0
) -> dict[str, float]:
    """The weighted fraction of ``hit`` with its Wilson interval.

    The value is ``sum(w * hit) / sum(w)``; its interval is :func:`wilson_interval` of
    that fraction at Kish's (1965) effective sample size ``n_eff = (sum w)^2 / sum w^2``
    (equal to ``n`` for equal weights), i.e. the weighted sample is treated as
    ``n_eff`` unweighted draws with the same fraction. 68 % by default (``z = 1``).

    Returns ``{"value", "low", "high", "n", "n_eff"}``: ``n`` the number of rows (with
    weight > 0); value and interval NaN when there are none.
    """
    hit = np.asarray(hit, dtype=bool)
    w = as_weights(weights, len(hit))
    total = float(w.sum())
    n = int(np.count_nonzero(w > 0))
    if not total > 0:
        nan = float("nan")
        return {"value": nan, "low": nan, "high": nan, "n": 0, "n_eff": 0.0}
    value = float(w[hit].sum() / total)
    n_eff = total**2 / float((w * w).sum())
    low, high = wilson_interval(value * n_eff, n_eff, z)
    return {"value": value, "low": low, "high": high, "n": n, "n_eff": float(n_eff)}


# ------------------------------------------------------------------ rates and purity


def rates_vs_threshold(
    score: np.ndarray,
    truth: np.ndarray,
    thresholds: np.ndarray,
    weights: np.ndarray | None = None,
    n_classes: int = len(CLASSES),
) -> np.ndarray:
    """Class-conditional selection rates versus threshold, ``(n_classes + 1, T)``:
    ``R_k(t)`` = the weighted fraction of sources of true class ``k`` with
    ``score >= t``; the last row is "other" (``truth == -1``: spurious detections).
    Row ``k`` at ``t`` is the true-positive rate when ``k`` is the list's class, a
    false-positive rate otherwise. A row whose class has no source (or no weight) is NaN.
    These depend on the classifier and the sources' depth, not on the field's priors."""
    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=int)
    t = np.asarray(thresholds, dtype=float)
    w = as_weights(weights, len(score))
    out = np.full((n_classes + 1, len(t)), np.nan)
    for row, k in enumerate([*range(n_classes), -1]):
        member = truth == k
        total = w[member].sum()
        if not total > 0:
            continue
        s, ws = score[member], w[member]
        order = np.argsort(s, kind="stable")
        s, cw = s[order], np.concatenate([[0.0], np.cumsum(ws[order])])
        below = cw[np.searchsorted(s, t, side="left")]  # weight with score < t
        out[row] = (total - below) / total
    return out


def purity_from_rates(rates: np.ndarray, priors: Sequence[float], cls: int | str) -> np.ndarray:
    """Purity versus threshold of the list of class ``cls`` in a field with class
    ``priors``: ``purity(t) = π_c R_c(t) / Σ_k π_k R_k(t)`` (issue 23, item 5).

    ``rates`` as :func:`rates_vs_threshold` (``n_classes + 1`` rows, the last "other");
    ``priors`` of length ``n_classes`` (no spurious sources) or ``n_classes + 1`` (the
    last the fraction of spurious detections), normalised to sum to 1. A class with
    prior 0 is left out (its rates may then be NaN); NaN where nothing is selected."""
    r = np.asarray(rates, dtype=float)
    pi = np.asarray(priors, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"rates must be (n_classes + 1, T), not shape {r.shape}")
    if len(pi) == r.shape[0] - 1:
        pi = np.append(pi, 0.0)
    if len(pi) != r.shape[0] or not np.all(np.isfinite(pi) & (pi >= 0)) or pi.sum() <= 0:
        raise ValueError(f"priors must be {r.shape[0] - 1} or {r.shape[0]} non-negative numbers")
    pi = pi / pi.sum()
    c = class_index(cls)
    with np.errstate(invalid="ignore"):
        terms = np.where(pi[:, None] > 0, pi[:, None] * r, 0.0)
        total = terms.sum(axis=0)
        return np.where(total > 0, terms[c] / np.where(total > 0, total, 1.0), np.nan)


def threshold_for_purity(
    thresholds: np.ndarray, purity: np.ndarray, min_purity: float
) -> float | None:
    """The lowest threshold from which purity stays at least ``min_purity`` at every
    higher threshold that still selects something (finite purity).

    That is the monotone envelope from the top: walking down from the highest
    threshold, the running minimum of purity; the answer is the lowest threshold whose
    envelope is still ``>= min_purity``. A dip anywhere above a candidate disqualifies
    it, so a list cut at the answer, or any stricter one, is at least that pure.
    ``None`` when no threshold qualifies. ``thresholds`` need not be sorted."""
    t = np.asarray(thresholds, dtype=float)
    p = np.asarray(purity, dtype=float)
    if t.shape != p.shape:
        raise ValueError("thresholds and purity must have the same shape")
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    valid = np.isfinite(p)
    if not valid.any():
        return None
    # running minimum from the top, over thresholds that select something
    envelope = np.minimum.accumulate(np.where(valid, p, np.inf)[::-1])[::-1]
    ok = valid & (envelope >= min_purity)
    if not ok.any():
        return None
    # the envelope is non-decreasing in t, so the qualifying thresholds are a top range
    return float(t[np.argmax(ok)])


# ------------------------------------------------------------------ curves


def precision_recall(
    score: np.ndarray,
    truth: np.ndarray,
    cls: int | str,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted precision (purity) and recall (completeness) of the list
    ``score >= t`` of class ``cls`` at every distinct score ``t``, ascending: three
    ``(T,)`` arrays ``(precision, recall, thresholds)``. Everything not of class ``cls``
    (spurious detections included) is a false positive. Purity at the sample's own mix;
    at other priors use :func:`rates_vs_threshold` and :func:`purity_from_rates`.
    Recall is NaN when the class has no weight."""
    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=int)
    w = as_weights(weights, len(score))
    pos = truth == class_index(cls)
    finite = np.isfinite(score)
    score, w, pos = score[finite], w[finite], pos[finite]
    thresholds, inverse = np.unique(score, return_inverse=True)
    nt = len(thresholds)
    tp_at = np.bincount(inverse, weights=w * pos, minlength=nt)
    all_at = np.bincount(inverse, weights=w, minlength=nt)
    tp = np.cumsum(tp_at[::-1])[::-1]  # weight of positives with score >= t
    sel = np.cumsum(all_at[::-1])[::-1]
    total_pos = float(w[pos].sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(sel > 0, tp / np.where(sel > 0, sel, 1.0), np.nan)
        recall = tp / total_pos if total_pos > 0 else np.full(nt, np.nan)
    return precision, recall, thresholds


def purity_at_completeness(
    score: np.ndarray,
    truth: np.ndarray,
    cls: int | str,
    completeness: float,
    weights: np.ndarray | None = None,
) -> tuple[float, float]:
    """``(purity, threshold)`` of the list ranked by ``score`` and cut at the highest
    threshold that reaches at least ``completeness`` of class ``cls`` (weighted; the
    sample's own mix). ``(nan, nan)`` when the class is absent."""
    precision, recall, thresholds = precision_recall(score, truth, cls, weights)
    ok = np.isfinite(recall) & (recall >= completeness - 1e-12)
    if not ok.any():
        return (float("nan"), float("nan"))
    i = int(np.flatnonzero(ok)[-1])  # recall falls with t: the last qualifying is highest
    return (float(precision[i]), float(thresholds[i]))


# ------------------------------------------------------------------ one list


def _interloper_class(
    truth: np.ndarray, c: int, z_true: np.ndarray | None, z_threshold: float, dz: float
) -> np.ndarray:
    """For each row: True where, if selected as class ``c`` while not of it, it is a
    catastrophic interloper; False where it is scatter across the redshift threshold
    (a galaxy within ``dz`` of ``z_threshold`` on the other side, for a galaxy list)."""
    lowz, highz = CLASSES.index("lowz"), CLASSES.index("highz")
    catastrophic = np.ones(len(truth), dtype=bool)
    if z_true is None or c not in (lowz, highz):
        return catastrophic
    z = np.asarray(z_true, dtype=float)
    with np.errstate(invalid="ignore"):
        if c == highz:
            scatter = (truth == lowz) & (z >= z_threshold - dz) & (z < z_threshold)
        else:
            scatter = (truth == highz) & (z >= z_threshold) & (z < z_threshold + dz)
    return catastrophic & ~scatter


def list_metrics(
    selected: np.ndarray,
    truth: np.ndarray,
    cls: int | str,
    weights: np.ndarray | None = None,
    z_true: np.ndarray | None = None,
    kind: np.ndarray | None = None,
    z_threshold: float = Z_HIGH,
    scatter_dz: float = SCATTER_DZ,
    z: float = 1.0,
) -> dict[str, Any]:
    """What a list of sources selected as class ``cls`` holds, against the truth.

    Interlopers are selected sources not of class ``cls``. They are *catastrophic*
    unless they are *scatter across the threshold*: for the high-z list, low-z galaxies
    with ``z_threshold - scatter_dz <= z_true < z_threshold`` (3 <= z < 4 by default);
    for the low-z list, high-z galaxies with ``z_threshold <= z_true < z_threshold +
    scatter_dz``. For the brown-dwarf list, and for spurious detections (truth -1) and
    brown dwarfs in any list, every interloper is catastrophic; without ``z_true``
    every interloper is (conservative).

    Returns a JSON-safe dict (NaN where undefined)::

        {
          "class": "highz",
          "n_selected": int,              # rows selected (weight > 0), unweighted
          "weight_selected": float,       # their total weight (sources on the sky)
          "n_true": int,                  # rows of class cls (the completeness base)
          "weight_true": float,
          "purity": {value, low, high, n, n_eff},        # weighted_fraction
          "completeness": {value, low, high, n, n_eff},
          "purity_catastrophic": {value, low, high, n, n_eff},
              # 1 - (catastrophic interlopers / selected), weighted: scatter interlopers
              # are not counted against it (they stay in the list)
          "interlopers": {
            "n": int, "weight": float,
            "catastrophic": float, "scatter": float,          # weights
            "by_class": {"lowz": float, ..., "other": float},  # weights, classes != cls
            "by_kind": {kind: {"n": int, "weight": float,
                               "catastrophic": float, "scatter": float}},  # {} w/o kind
          },
          "z_threshold": float, "scatter_window": [lo, hi] | None,
        }

    ``z`` sets the intervals (68 % by default, :func:`weighted_fraction`).
    """
    sel = np.asarray(selected, dtype=bool)
    truth = np.asarray(truth, dtype=int)
    w = as_weights(weights, len(sel))
    c = class_index(cls)
    member = truth == c
    catastrophic = _interloper_class(truth, c, z_true, z_threshold, scatter_dz)
    inter = sel & ~member
    cat_i = inter & catastrophic
    scat_i = inter & ~catastrophic
    if c == CLASSES.index("highz") and z_true is not None:
        window: list[float] | None = [z_threshold - scatter_dz, z_threshold]
    elif c == CLASSES.index("lowz") and z_true is not None:
        window = [z_threshold, z_threshold + scatter_dz]
    else:
        window = None

    by_class = {
        _class_name(k): float(w[inter & (truth == k)].sum())
        for k in [*range(len(CLASSES)), -1]
        if k != c
    }
    by_kind: dict[str, dict[str, Any]] = {}
    if kind is not None:
        kinds = np.asarray(kind).astype(str)
        for name in np.unique(kinds[inter]):
            rows = inter & (kinds == name)
            by_kind[str(name)] = {
                "n": int(np.count_nonzero(rows & (w > 0))),
                "weight": float(w[rows].sum()),
                "catastrophic": float(w[rows & catastrophic].sum()),
                "scatter": float(w[rows & ~catastrophic].sum()),
            }
    return {
        "class": _class_name(c),
        "n_selected": int(np.count_nonzero(sel & (w > 0))),
        "weight_selected": float(w[sel].sum()),
        "n_true": int(np.count_nonzero(member & (w > 0))),
        "weight_true": float(w[member].sum()),
        "purity": weighted_fraction(member[sel], w[sel], z),
        "completeness": weighted_fraction(sel[member], w[member], z),
        "purity_catastrophic": weighted_fraction(~cat_i[sel], w[sel], z),
        "interlopers": {
            "n": int(np.count_nonzero(inter & (w > 0))),
            "weight": float(w[inter].sum()),
            "catastrophic": float(w[cat_i].sum()),
            "scatter": float(w[scat_i].sum()),
            "by_class": by_class,
            "by_kind": by_kind,
        },
        "z_threshold": float(z_threshold),
        "scatter_window": window,
    }


def _bin_rows(values: np.ndarray, edges: Sequence[float]) -> list[tuple[float, float, np.ndarray]]:
    """``[(lo, hi, rows)]``: bins ``[lo, hi)``, the last one closed; NaN rows in none."""
    v = np.asarray(values, dtype=float)
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("bin edges must be at least two increasing numbers")
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(e)):
        with np.errstate(invalid="ignore"):
            rows = (v >= lo) & ((v < hi) if i < len(e) - 2 else (v <= hi))
        out.append((float(lo), float(hi), rows))
    return out


def binned_list_metrics(
    selected: np.ndarray,
    truth: np.ndarray,
    cls: int | str,
    *,
    observed: np.ndarray | None = None,
    observed_edges: Sequence[float] | None = None,
    true_value: np.ndarray | None = None,
    true_edges: Sequence[float] | None = None,
    weights: np.ndarray | None = None,
    z_true: np.ndarray | None = None,
    z_threshold: float = Z_HIGH,
    scatter_dz: float = SCATTER_DZ,
    z: float = 1.0,
) -> dict[str, list[dict[str, Any]]]:
    """Purity in bins of an *observed* quantity and completeness in bins of a *true* one.

    Purity must be binned by what is measured (S/N, magnitude, photo-z: the user can cut
    on it), completeness by what is true (z, intrinsic flux: what the list misses).
    Bins are ``[lo, hi)``, the last closed; rows whose quantity is NaN fall in none.

    Returns ``{"purity": [...], "completeness": [...]}`` (a list empty when its
    quantity is not given). Each purity bin: ``{"lo", "hi", "n_selected",
    "weight_selected", "purity": weighted_fraction, "purity_catastrophic":
    weighted_fraction}`` over the selected rows in the bin (catastrophic as in
    :func:`list_metrics`); each completeness bin: ``{"lo", "hi", "n_true",
    "weight_true", "completeness": weighted_fraction}`` over the class's rows in the bin.
    """
    sel = np.asarray(selected, dtype=bool)
    truth = np.asarray(truth, dtype=int)
    w = as_weights(weights, len(sel))
    c = class_index(cls)
    member = truth == c
    catastrophic = _interloper_class(truth, c, z_true, z_threshold, scatter_dz)
    out: dict[str, list[dict[str, Any]]] = {"purity": [], "completeness": []}
    if observed is not None:
        if observed_edges is None:
            raise ValueError("observed needs observed_edges")
        for lo, hi, rows in _bin_rows(observed, observed_edges):
            s = rows & sel
            out["purity"].append(
                {
                    "lo": lo,
                    "hi": hi,
                    "n_selected": int(np.count_nonzero(s & (w > 0))),
                    "weight_selected": float(w[s].sum()),
                    "purity": weighted_fraction(member[s], w[s], z),
                    "purity_catastrophic": weighted_fraction(~(~member & catastrophic)[s], w[s], z),
                }
            )
    if true_value is not None:
        if true_edges is None:
            raise ValueError("true_value needs true_edges")
        for lo, hi, rows in _bin_rows(true_value, true_edges):
            m = rows & member
            out["completeness"].append(
                {
                    "lo": lo,
                    "hi": hi,
                    "n_true": int(np.count_nonzero(m & (w > 0))),
                    "weight_true": float(w[m].sum()),
                    "completeness": weighted_fraction(sel[m], w[m], z),
                }
            )
    return out
