"""The field test: a classifier judged by the candidate lists it hands a user on a whole
field, at the sky's mix of kinds (issue 23).

A data source may attach a field test to its dataset (:attr:`hizkit.Dataset.field`):
sources detected in a whole field, with their truth (``label``: the true class, missing
for a spurious detection; ``z``: the true redshift; ``kind``; ``weight``: the importance
weight back to the sky's rates of an enriched draw). Nothing in it is ever trained on.

For every classifier fitted on a run's split, :func:`evaluate` then does what a user must
do with a model on a new field, and measures what it gets:

1. **calibrate** its probabilities on the run's validation part, at the class prior it
   was trained at (temperature scaling; :class:`hizkit.calibration.Calibration`: with
   balanced class weights that prior is uniform);
2. move the probabilities to **the field's class priors** (a simulated field knows them)
   and take the most probable class: the operating point. How well EM (Saerens et al.
   2002) finds those priors from the outputs alone, as ``hizkit predict`` must on a real
   field, is reported beside them;
3. **select at a stated purity**: rates ``R_k(t)`` measured on one half of the field and
   the priors of the other give ``purity(t)``; the lowest threshold that keeps it above
   ``min_purity`` is applied to the other half, whose true purity is then measured
   (stated against achieved), with the priors given and with EM's estimate;
4. report purity and completeness of the high-z and brown-dwarf lists (weighted, with
   Wilson intervals at Kish's effective size), catastrophic interlopers (true z < 3,
   brown dwarfs, spurious) apart from scatter across the threshold (3 <= z < 4), the
   interlopers by kind, purity at completeness 0.5 / 0.8, precision-recall curves, purity
   binned by observed S/N, magnitude and photo-z and completeness by true z, and the
   class-wise calibration error of the high-z and brown-dwarf probabilities before and
   after (:func:`hizkit.calibration.classwise_ece`).

Pure functions of arrays and a Dataset; :mod:`hizkit.bench` calls :func:`evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hizkit.calibration import Calibration, classwise_ece, em_priors, shift_priors
from hizkit.cuts import detection_magnitude, detection_snr
from hizkit.dataset import CLASSES, Dataset
from hizkit.errors import HizkitError
from hizkit.purity import (
    binned_list_metrics,
    list_metrics,
    precision_recall,
    purity_at_completeness,
    purity_from_rates,
    rates_vs_threshold,
    threshold_for_purity,
)

#: the lists a user draws from a field
TARGETS: tuple[str, ...] = ("highz", "brown_dwarf")
#: S/N subsets every list is also measured in (measured detection-stack S/N)
SNR_SUBSETS: dict[str, tuple[float, float]] = {
    "all": (-np.inf, np.inf),
    "snr_5_10": (5.0, 10.0),
    "snr_10": (10.0, np.inf),
}
#: bins of observed quantities (purity) and of the true redshift (completeness)
SNR_EDGES = (5.0, 7.0, 10.0, 20.0, 50.0, 1e6)
MAG_EDGES = (20.0, 26.0, 27.0, 28.0, 29.0, 32.0)
ZPHOT_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 20.0)
ZTRUE_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0)
#: completeness levels at which ranked lists are read
COMPLETENESS = (0.5, 0.8)
#: the purity ``hizkit bench`` selects at unless told (``[bench] min_purity``)
MIN_PURITY = 0.9
#: points kept of each precision-recall curve (JSON, figures)
CURVE_POINTS = 120


@dataclass(frozen=True)
class FieldTruth:
    """What the simulator knows of each field source, as arrays."""

    truth: np.ndarray  # class index; -1 for a spurious detection
    weight: np.ndarray
    z: np.ndarray
    kind: np.ndarray
    snr: np.ndarray  # measured detection-stack S/N
    mag: np.ndarray  # measured detection-band magnitude
    z_phot: np.ndarray | None

    @classmethod
    def of(cls, field: Dataset) -> FieldTruth:
        cat = field.catalog
        if "label" not in cat.columns:
            raise HizkitError("a field test needs the true class of every source (label)")
        n = len(cat)
        truth = field.y
        weight = cat["weight"].to_numpy(float) if "weight" in cat else np.ones(n)
        if not np.all(np.isfinite(weight) & (weight >= 0)):
            raise HizkitError("a field test's weights must be finite and non-negative")
        z = cat["z"].to_numpy(float) if "z" in cat else np.full(n, np.nan)
        kind = cat["kind"].astype(str).to_numpy() if "kind" in cat else np.array(["?"] * n)
        try:
            snr = detection_snr(cat)
        except (HizkitError, KeyError):
            snr = np.full(n, np.nan)
        z_phot = cat["z_phot"].to_numpy(float) if "z_phot" in cat else None
        return cls(truth, weight, z, kind, snr, detection_magnitude(cat), z_phot)

    def take(self, rows: np.ndarray) -> FieldTruth:
        return FieldTruth(
            self.truth[rows],
            self.weight[rows],
            self.z[rows],
            self.kind[rows],
            self.snr[rows],
            self.mag[rows],
            None if self.z_phot is None else self.z_phot[rows],
        )

    def priors(self) -> np.ndarray:
        """The field's true class priors (weighted, labelled sources)."""
        keep = self.truth >= 0
        counts = np.bincount(self.truth[keep], weights=self.weight[keep], minlength=len(CLASSES))
        return counts / counts.sum() if counts.sum() > 0 else np.full(len(CLASSES), np.nan)

    @property
    def other_fraction(self) -> float:
        """The weighted share of detections with no true source (spurious)."""
        total = self.weight.sum()
        return float(self.weight[self.truth < 0].sum() / total) if total > 0 else 0.0

    def counts(self) -> np.ndarray:
        """Sources per row of :func:`hizkit.purity.rates_vs_threshold` (classes, then
        spurious), unweighted."""
        return np.array([np.sum(self.truth == k) for k in [*range(len(CLASSES)), -1]], float)


def with_other(priors: Sequence[float], other_fraction: float) -> np.ndarray:
    """Class priors extended by the share of spurious detections (the rates' last row),
    so a stated purity counts them as the measured one does."""
    p = np.asarray(priors, dtype=float)
    return np.append(p / p.sum() * (1 - other_fraction), other_fraction)


#: a threshold must select at least this many field-test sources (expected, unweighted)
#: for its purity to count: one interloper at the very top would otherwise empty a list
MIN_SELECTED = 5


def purity_curve(rates: np.ndarray, counts: np.ndarray, priors: np.ndarray, c: int) -> np.ndarray:
    """purity(t) = pi_c R_c(t) / sum_k pi_k R_k(t) from measured ``rates`` (a class with
    no member there: never selected), NaN where the thresholds select fewer than
    :data:`MIN_SELECTED` of the ``counts`` sources the rates were measured on."""
    r = np.nan_to_num(np.asarray(rates, dtype=float), nan=0.0)
    purity = purity_from_rates(r, priors, c)
    expected = np.asarray(counts, dtype=float) @ r
    return np.where(expected >= MIN_SELECTED, purity, np.nan)


def calibrate(
    valid_proba: np.ndarray | None, valid_y: np.ndarray | None, train_prior: np.ndarray
) -> Calibration:
    """The classifier's calibration at its training prior, from its validation part (no
    temperature change when there is none, e.g. fractions without a validation share)."""
    prior = np.asarray(train_prior, dtype=float)
    if valid_proba is None or valid_y is None or not np.any(np.asarray(valid_y) >= 0):
        return Calibration(1.0, tuple(float(v) for v in prior / prior.sum()))
    return Calibration.fit(valid_proba, valid_y, prior)


def _curve(score: np.ndarray, truth: np.ndarray, c: int, w: np.ndarray) -> dict[str, list]:
    precision, recall, thresholds = precision_recall(score, truth, c, w)
    if len(thresholds) > CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(thresholds) - 1, CURVE_POINTS).round().astype(int))
        precision, recall, thresholds = precision[keep], recall[keep], thresholds[keep]
    return {
        "purity": precision.tolist(),
        "completeness": recall.tolist(),
        "threshold": thresholds.tolist(),
    }


def _subset(t: FieldTruth, lo: float, hi: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (t.snr >= lo) & (t.snr < hi) if np.isfinite(lo) else np.ones(len(t.snr), bool)


def select_at_purity(
    score_fit: np.ndarray,
    t_fit: FieldTruth,
    score_apply: np.ndarray,
    priors: np.ndarray,
    c: int,
    min_purity: float,
) -> dict[str, Any]:
    """The threshold that keeps the list of class ``c`` at least ``min_purity`` pure in
    a field of class ``priors``, from rates measured on ``(score_fit, t_fit)``; with the
    stated purity and completeness there and the selection it makes of ``score_apply``."""
    thresholds = np.unique(np.concatenate([score_fit, np.linspace(0, 1, 201)]))
    rates = rates_vs_threshold(score_fit, t_fit.truth, thresholds, t_fit.weight)
    purity = purity_curve(rates, t_fit.counts(), priors, c)
    t = threshold_for_purity(thresholds, purity, min_purity)
    if t is None:
        return {"threshold": None, "stated_purity": None, "stated_completeness": None,
                "selected": np.zeros(len(score_apply), bool)}  # fmt: skip
    i = int(np.searchsorted(thresholds, t))
    return {
        "threshold": float(t),
        "stated_purity": float(purity[i]),
        "stated_completeness": float(rates[c, i]),
        "selected": score_apply >= t,
    }


def halves(truth: np.ndarray, seed: int) -> np.ndarray:
    """True for one half of the sources, False for the other: each true class (spurious
    detections too) shuffled with ``seed`` and dealt out alternately, so both halves
    hold every class that has two or more members."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(truth), dtype=bool)
    for k in np.unique(truth):
        members = rng.permutation(np.flatnonzero(truth == k))
        out[members[::2]] = True
    return out


def evaluate(
    field: Dataset | FieldTruth,
    proba: np.ndarray,
    calibration: Calibration,
    *,
    min_purity: float = MIN_PURITY,
    seed: int = 0,
) -> dict[str, Any]:
    """The field section of one classifier on one run (module docstring). ``proba``: its
    raw probabilities on the field's sources. Returns JSON-ready values (NaN where a
    quantity is undefined); the schema is in :func:`hizkit.report.results_document`."""
    t = field if isinstance(field, FieldTruth) else FieldTruth.of(field)
    proba = np.asarray(proba, dtype=float)
    w = t.weight
    true_priors = t.priors()
    calibrated = calibration.apply(proba)
    train_prior = np.asarray(calibration.train_prior)
    estimated, _ = em_priors(calibrated, train_prior, weights=w)
    # the operating point at the field's priors, given (a simulation knows them); how
    # well EM finds them from the outputs alone is reported beside them
    at_field = shift_priors(calibrated, train_prior, true_priors)
    predicted = np.argmax(at_field, axis=1)
    half = halves(t.truth, seed)
    out: dict[str, Any] = {
        "n_sources": len(proba),
        "weight": float(w.sum()),
        "priors": {
            "train": list(calibration.train_prior),
            "estimated": estimated.tolist(),
            "true": true_priors.tolist(),
        },
        "temperature": calibration.temperature,
        "min_purity": float(min_purity),
        "lists": {},
    }
    for name in TARGETS:
        c = CLASSES.index(name)
        score = calibrated[:, c]  # at the training prior: a score whose rates R_k(t) do
        # not depend on the field's priors, so purity(t) can be computed for any priors
        entry: dict[str, Any] = {}
        for subset, (lo, hi) in SNR_SUBSETS.items():
            rows = _subset(t, lo, hi)
            sub = t.take(rows)
            entry[subset] = list_metrics(
                predicted[rows] == c, sub.truth, c, sub.weight, sub.z, sub.kind
            )
            entry[subset]["ranked"] = {
                f"purity_at_completeness_{level}": purity_at_completeness(
                    score[rows], sub.truth, c, level, sub.weight
                )[0]
                for level in COMPLETENESS
            }
        # stated purity: threshold from the rates of one half at the field's priors,
        # applied to the other half, whose truth then says how pure the list is; with the
        # priors given (the field's own) and with the priors EM finds in that half's
        # outputs (what hizkit predict does on a real field)
        fit, use = half, ~half
        sub = t.take(use)
        em_use, _ = em_priors(calibrated[use], train_prior, weights=w[use])
        other = t.take(fit).other_fraction  # known from the rates' sample, as in predict
        given, estimated = with_other(sub.priors(), other), with_other(em_use, other)
        for key, priors in (("at_min_purity", given), ("at_min_purity_em", estimated)):
            pick = select_at_purity(score[fit], t.take(fit), score[use], priors, c, min_purity)
            chosen = pick.pop("selected")
            achieved = list_metrics(chosen, sub.truth, c, sub.weight, sub.z, sub.kind)
            entry[key] = {**pick, "priors": priors.tolist(), "achieved": achieved}
        entry["curve"] = _curve(score, t.truth, c, w)
        binned = binned_list_metrics(
            predicted == c, t.truth, c, observed=t.snr, observed_edges=SNR_EDGES,
            true_value=t.z, true_edges=ZTRUE_EDGES, weights=w, z_true=t.z,
        )  # fmt: skip
        entry["by_snr"] = binned["purity"]
        entry["by_true_z"] = binned["completeness"]
        entry["by_magnitude"] = binned_list_metrics(
            predicted == c, t.truth, c, observed=t.mag, observed_edges=MAG_EDGES,
            weights=w, z_true=t.z,
        )["purity"]  # fmt: skip
        if t.z_phot is not None:
            entry["by_photoz"] = binned_list_metrics(
                predicted == c, t.truth, c, observed=t.z_phot, observed_edges=ZPHOT_EDGES,
                weights=w, z_true=t.z,
            )["purity"]  # fmt: skip
        entry["ece"] = {
            "raw": classwise_ece(t.truth, proba, c, w),
            "calibrated": classwise_ece(t.truth, at_field, c, w),
        }
        out["lists"][name] = entry
    return out


def headline(section: dict[str, Any]) -> dict[str, float]:
    """The field section's scalars for the run's metrics (``field_<...>`` keys): purity
    and completeness of each list at the operating point (all and S/N >= 10), catastrophic
    purity, purity at completeness 0.5 / 0.8, achieved purity at ``min_purity`` and the
    class-wise calibration error after calibration."""
    out: dict[str, float] = {}
    for name, entry in section["lists"].items():
        for subset in SNR_SUBSETS:
            m = entry[subset]
            tag = "" if subset == "all" else f"_{subset}"
            out[f"field_purity_{name}{tag}"] = m["purity"]["value"]
            out[f"field_completeness_{name}{tag}"] = m["completeness"]["value"]
            out[f"field_purity_catastrophic_{name}{tag}"] = m["purity_catastrophic"]["value"]
            for level in COMPLETENESS:
                key = f"purity_at_completeness_{level}"
                out[f"field_{key}_{name}{tag}"] = m["ranked"][key]
        pick = entry["at_min_purity"]
        out[f"field_min_purity_stated_{name}"] = _number(pick["stated_purity"])
        out[f"field_min_purity_achieved_{name}"] = pick["achieved"]["purity"]["value"]
        out[f"field_min_purity_completeness_{name}"] = pick["achieved"]["completeness"]["value"]
        out[f"field_ece_{name}"] = entry["ece"]["calibrated"]
        out[f"field_ece_raw_{name}"] = entry["ece"]["raw"]
    return out


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------- selection in use

#: thresholds at which a model stores its rates R_k(t) (calibrated scores crowd near 0
#: and 1, so the grid is even in logit)
SELECTION_GRID = np.concatenate([[0.0], 1 / (1 + np.exp(-np.linspace(-14, 14, 281))), [1.0]])


def selection_rates(calibrated: np.ndarray, field: Dataset | FieldTruth, measured_on: str) -> dict:
    """What a model keeps to select at a stated purity on any field: for each list, the
    rates ``R_k(t)`` at which sources of each true class (and spurious detections) score
    above ``t`` (:data:`SELECTION_GRID`), measured on a simulated field with truth.
    ``calibrated``: the model's calibrated probabilities there, at its training prior."""
    t = field if isinstance(field, FieldTruth) else FieldTruth.of(field)
    rates = {
        name: rates_vs_threshold(
            calibrated[:, CLASSES.index(name)], t.truth, SELECTION_GRID, t.weight
        ).tolist()
        for name in TARGETS
    }
    return {
        "measured_on": measured_on,
        "n_sources": len(t.truth),
        "rows": [*CLASSES, "other"],
        "counts": t.counts().tolist(),
        "priors": t.priors().tolist(),
        "other_fraction": t.other_fraction,
        "thresholds": SELECTION_GRID.tolist(),
        "rates": rates,
    }


def select(
    proba: np.ndarray,
    calibration: Calibration,
    selection: dict | None,
    *,
    min_purity: float | None = MIN_PURITY,
    threshold: float | None = None,
    priors: Sequence[float] | str = "sky",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Candidate lists of a field from a model's raw probabilities (``hizkit predict``).

    The field's priors (``priors``: numbers; ``"sky"``, those of the simulated field the
    rates were measured on; ``"em"``, estimated from the calibrated outputs) and
    the probabilities moved to them (columns ``p_field_<class>``). Each list (high-z, brown
    dwarfs) takes the sources whose calibrated score (at the training prior) is at least
    ``threshold``, or, without one, the lowest threshold whose purity
    ``pi_c R_c(t) / sum_k pi_k R_k(t)`` (the stored rates at the estimated priors) stays
    at least ``min_purity``. Without stored rates (a model trained on data with no field
    test) a list is the most probable class at the field's priors, and no purity is
    stated. Returns the columns (``p_field_*``; ``score_*``, the calibrated probability
    at the training prior that thresholds apply to; ``selected_*``) and what was done,
    for the outputs to state."""
    calibrated = calibration.apply(proba)
    train_prior = np.asarray(calibration.train_prior)
    priors_from = "given"
    if priors == "sky" and selection is not None and "priors" in selection:
        priors, priors_from = selection["priors"], f"the sky's, as in {selection['measured_on']}"
    elif isinstance(priors, str):  # "em", or "sky" for a model that measured no field
        priors = None
    if priors is None:
        priors, at_field = em_priors(calibrated, train_prior)
        priors_from = "EM on this field's calibrated outputs (Saerens et al. 2002)"
    else:
        priors = np.asarray(priors, dtype=float) / np.sum(priors)
        at_field = shift_priors(calibrated, train_prior, priors)
    columns: dict[str, np.ndarray] = {
        f"p_field_{name}": at_field[:, i] for i, name in enumerate(CLASSES)
    }
    statement: dict[str, Any] = {
        "priors": dict(zip(CLASSES, priors.tolist(), strict=True)),
        "priors_from": priors_from,
        "calibration": calibration.to_dict(),
        "rates_from": selection["measured_on"] if selection else None,
        "min_purity": None if threshold is not None else min_purity,
        "lists": {},
    }
    most_probable = np.argmax(at_field, axis=1)
    for name in TARGETS:
        c = CLASSES.index(name)
        entry: dict[str, Any] = {"threshold": None, "expected_purity": None,
                                 "expected_completeness": None}  # fmt: skip
        if selection is None or (threshold is None and min_purity is None):
            chosen = most_probable == c
            entry["rule"] = "most probable class at the field's priors"
        else:
            grid = np.asarray(selection["thresholds"], dtype=float)
            rates = np.nan_to_num(np.asarray(selection["rates"][name], dtype=float), nan=0.0)
            full = with_other(priors, selection["other_fraction"])
            purity = purity_curve(rates, np.asarray(selection["counts"]), full, c)
            t = (
                threshold
                if threshold is not None
                else threshold_for_purity(grid, purity, min_purity)
            )
            if t is None:
                chosen = np.zeros(len(proba), dtype=bool)
                entry["rule"] = f"no threshold reaches purity {min_purity}: the list is empty"
            else:
                j = min(int(np.searchsorted(grid, t, side="left")), len(grid) - 1)
                chosen = calibrated[:, c] >= t
                entry.update(
                    threshold=float(t),
                    expected_purity=_nan_none(purity[j]),
                    expected_completeness=_nan_none(rates[c, j]),
                    rule="calibrated score >= threshold"
                    + ("" if threshold is not None else f" (purity >= {min_purity})"),
                )
        entry["n_selected"] = int(chosen.sum())
        columns[f"score_{name}"] = calibrated[:, c]
        columns[f"selected_{name}"] = chosen
        statement["lists"][name] = entry
    return columns, statement


def _nan_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
