"""A labelled set drawn like the field (issue 23 item 4): ``MockSurvey(training_set="field")``.

The curated labelled set (:func:`survey.build`) is poster-like: isolated cutouts, S/N >= 10,
tight photo-z PDFs. A classifier applied to a field then meets a population it never saw.
This module draws the labelled sources with the field generator (:func:`field.simulate`)
instead: one continuous sky, neighbours and blends, photutils detection and deblending,
every detection down to the catalog cut (S/N >= ``detection_snr`` in the detection stack),
no photo-z, PDF-width or chi2 cut. Spurious detections (no true source) are left out: a
labelled source has a true class.

``training_mix``:

- ``"field"``: one field of about ``n_lowz + n_highz + n_brown_dwarfs`` detections at the
  sky's mix of kinds; the class counts are the sky's (about 88 % low-z, 12 % high-z, rare
  brown dwarfs and red high-z kinds drawn in excess), and ``weight`` holds the importance
  weights back to the sky. No extra brown dwarfs (the field's own are enriched already).
- ``"balanced"``: exactly ``n_lowz`` / ``n_highz`` / ``n_brown_dwarfs`` labelled sources
  (and ``n_extra_brown_dwarfs`` more brown dwarfs in the training part), from fields whose
  class rates are multiplied (``field.simulate(mix=...)``) so that they arrive in those
  proportions while the total density of sources, hence the crowding, stays the sky's;
  more fields are drawn until every count is met, surplus detections dropped at random.
  ``weight`` holds each source's importance weight back to its (mixed) field's sky.

The fields use the random streams ``(FIELD_STREAM, TRAINING_STREAM, j, ...)``, disjoint
from the field test's ``(FIELD_STREAM, i)`` and from every stream of the survey, so the
labelled sources are new draws, never in the field test nor in the unlabelled catalog.

The catalog has the curated set's columns (:data:`COLUMNS`) and ``weight``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.dataset import CLASSES, NIRCAM_BANDS, Dataset, flux_col, fluxerr_col, radius_col
from hizkit.errors import HizkitError
from hizkit.plugins.mock import field, images
from hizkit.plugins.mock.population import HIGHZ_KINDS

#: spawn-key element of the labelled fields (after field.FIELD_STREAM): the field test
#: uses (FIELD_STREAM, i), these (FIELD_STREAM, TRAINING_STREAM, j, i)
TRAINING_STREAM = 100
#: first ids: the labelled set's and the extra brown dwarfs', as the curated set's
FIRST_ID, FIRST_EXTRA_ID = 1, 10_000_001
#: fields drawn at most for the balanced quotas
MAX_FIELDS = 20
#: a balanced field is drawn this much larger than the sources still needed
OVERDRAW = 1.15

#: the curated labelled set's columns, in its order
COLUMNS = (
    "id",
    "ra",
    "dec",
    *[c for b in NIRCAM_BANDS for c in (flux_col(b), fluxerr_col(b), radius_col(b))],
    "snr_det",
    "z",
    "kind",
    "teff",
    "feh",
    "age",
    "av",
    "re_true",
    "label",
    "z_phot",
    "z_l68",
    "z_u68",
    "chi2_lowz",
    "chi2_highz",
    "bimodal",
    "chi2_phot",
    "label_true",
)

TRAINING_SETS = ("curated", "field")
TRAINING_MIXES = ("balanced", "field")


def sky_class_shares() -> dict[str, float]:
    """Share of each class among the sky's detected sources (:func:`field.sky_fractions`)."""
    sky = field.sky_fractions()
    return {
        "lowz": sky["lowz"],
        "highz": sum(sky[k] for k in HIGHZ_KINDS),
        "brown_dwarf": sky["brown_dwarf"],
    }


def balanced_mix(need: dict[str, int]) -> dict[str, float]:
    """Multipliers of the sky's class rates that make the classes arrive in the
    proportions of ``need`` with the sky's total density (the multiplied shares sum
    to one)."""
    total = sum(need.values())
    sky = sky_class_shares()
    return {c: need[c] / total / sky[c] for c in CLASSES}


def _field(
    params: dict[str, Any], n: int, j: int, mix: dict[str, float] | None
) -> tuple[pd.DataFrame, np.ndarray]:
    f = field.simulate(
        n,
        params["seed"],
        cutout_size=params["cutout_size"],
        mix=mix,
        depth_scatter=params["depth_scatter"],
        coverage_loss=params["coverage_loss"],
        detection_snr=params["detection_snr"],
        stream=(TRAINING_STREAM, j),
    )
    cat = f.data.catalog
    real = ~cat["spurious"].to_numpy(bool)
    cat = cat[real].reset_index(drop=True)
    cat["label_true"] = cat["label"].to_numpy(dtype=object).astype(str)
    cat["label"] = _labels(cat, params["labels"])
    return cat, f.data.cutouts[real]


def _select_rng(seed: int, j: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(field.FIELD_STREAM, TRAINING_STREAM, j, 99))
    )


def _labels(cat: pd.DataFrame, labels: str) -> np.ndarray:
    from hizkit.plugins.mock.survey import assign_labels

    true = cat["label_true"].to_numpy(dtype=object).astype(str)
    return np.asarray(assign_labels(true, cat["z_phot"].to_numpy(), labels)).astype(str)


def _dataset(cat: pd.DataFrame, cutouts: np.ndarray, first_id: int, rng) -> Dataset:
    order = rng.permutation(len(cat))
    cat, cutouts = cat.iloc[order].reset_index(drop=True), cutouts[order]
    cols: dict[str, Any] = {}
    for c in COLUMNS:
        if c == "id":
            cols[c] = np.arange(first_id, first_id + len(cat))
        elif c in ("kind", "label", "label_true"):
            cols[c] = cat[c].to_numpy(dtype=object).astype(str)
        else:
            cols[c] = cat[c].to_numpy()
    cols["weight"] = cat["weight"].to_numpy(float)
    return Dataset(pd.DataFrame(cols), NIRCAM_BANDS, images.PIXEL, cutouts)


def labelled(params: dict[str, Any]) -> tuple[Dataset, Dataset | None, dict[str, Any]]:
    """The labelled set and the extra brown dwarfs (or None) drawn from fields, and a
    summary for the survey's meta."""
    counts = {
        "lowz": params["n_lowz"],
        "highz": params["n_highz"],
        "brown_dwarf": params["n_brown_dwarfs"],
    }
    n_extra = params["n_extra_brown_dwarfs"]
    mode = params["training_mix"]
    seed = params["seed"]
    if mode == "field":
        n = sum(counts.values())
        progress.log(f"simulating the labelled set: a field of about {n} detections")
        cat, cut = _field(params, n, 0, None)
        main = _dataset(cat, cut, FIRST_ID, _select_rng(seed, 0))
        summary = {"fields": 1, "detections": len(cat)}
        return main, None, summary

    need = dict(counts)
    need["brown_dwarf"] += n_extra
    parts: list[pd.DataFrame] = []
    cut_parts: list[np.ndarray] = []
    detections = 0
    for j in range(MAX_FIELDS):
        left = sum(need.values())
        if left == 0:
            break
        n = math.ceil(OVERDRAW * left) + 10
        progress.log(
            f"simulating labelled field {j + 1}: about {n} detections for "
            + ", ".join(f"{need[c]} {c}" for c in CLASSES if need[c])
        )
        cat, cut = _field(params, n, j, balanced_mix(need))
        detections += len(cat)
        rng = _select_rng(seed, j)
        take = []
        for c in CLASSES:
            idx = np.flatnonzero(cat["label"].to_numpy() == c)
            idx = np.sort(rng.permutation(idx)[: need[c]])
            need[c] -= idx.size
            take.append(idx)
        k = np.sort(np.concatenate(take))
        parts.append(cat.iloc[k])
        cut_parts.append(cut[k])
    if sum(need.values()) > 0:
        raise HizkitError(
            f"mock: {MAX_FIELDS} labelled fields left {need} still to find; lower the counts "
            "or detection_snr"
        )
    cat = pd.concat(parts, ignore_index=True)
    cut = np.concatenate(cut_parts)
    rng = _select_rng(seed, MAX_FIELDS)
    # the brown dwarfs beyond n_brown_dwarfs (a random choice) are the extra ones
    bd = np.flatnonzero(cat["label"].to_numpy() == "brown_dwarf")
    extra_rows = np.sort(rng.permutation(bd)[:n_extra]) if n_extra else np.array([], int)
    is_extra = np.zeros(len(cat), bool)
    is_extra[extra_rows] = True
    main = _dataset(cat[~is_extra], cut[~is_extra], FIRST_ID, rng)
    extra = None
    if n_extra:
        extra = _dataset(cat[is_extra], cut[is_extra], FIRST_EXTRA_ID, rng)
    summary = {"fields": len(parts), "detections": int(detections)}
    return main, extra, summary
