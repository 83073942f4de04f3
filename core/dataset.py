"""The Dataset every stage passes on, the class labels, and the shared split."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hizkit.errors import HizkitError

#: The fixed class order of every probability matrix.
CLASSES: tuple[str, ...] = ("lowz", "highz", "brown_dwarf")
#: The redshift boundary between the low-z and high-z classes (the poster's).
Z_HIGH = 4.0
#: The seven JADES NIRCam broad bands, blue to red.
NIRCAM_BANDS: tuple[str, ...] = ("F090W", "F115W", "F150W", "F200W", "F277W", "F356W", "F444W")


def flux_col(band: str) -> str:
    """Catalog column of a band's flux in nJy."""
    return f"flux_{band}"


def fluxerr_col(band: str) -> str:
    """Catalog column of a band's 1-sigma flux error in nJy."""
    return f"fluxerr_{band}"


def radius_col(band: str) -> str:
    """Catalog column of a band's half-light (flux) radius in arcsec."""
    return f"radius_{band}"


def ab_mag(flux_njy: np.ndarray) -> np.ndarray:
    """AB magnitude of a flux in nJy (NaN where the flux is not positive)."""
    flux = np.asarray(flux_njy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, -2.5 * np.log10(flux) + 31.4, np.nan)


REQUIRED_COLUMNS = ("id", "ra", "dec")


@dataclass(frozen=True)
class Dataset:
    """Sources with their catalog, and optionally their cutouts and derived features.

    Attributes:
        catalog: one row per source: ``id``, ``ra``, ``dec`` (deg), per band ``flux_<B>`` and
            ``fluxerr_<B>`` (nJy) and ``radius_<B>`` (arcsec); ``z`` when known; ``label`` in
            :data:`CLASSES` or missing for unlabelled sources; boolean flags such as ``bimodal``.
        bands: band names in the order of the cutouts' second axis.
        pixel_scale: arcsec per pixel of the cutouts.
        cutouts: float32 ``(N, bands, H, W)``; NaN where a band has no coverage. Optional.
        errors: float32 1-sigma errors of the cutouts' pixels, same shape. Optional.
        features: float ``(N, F)`` derived by preprocessors (e.g. HOG). Optional.
        unlabelled: a photometry-only catalog (same columns, no labels) for semi-supervised
            methods. Never split: every part sees the same one.
        extra_train: sources that may only ever join the training part (e.g. extra
            simulated brown dwarfs for training-time augmentation).
        field: a field test: sources detected in a whole field at the sky's mix of kinds,
            with their truth (``label``: the true class, missing for a spurious detection;
            ``z``: the true redshift; ``kind``; ``weight``: the importance weight back to
            the sky's rates of an enriched draw). Never split and never trained on: every
            run's classifiers are applied to it (:mod:`hizkit.field`). Optional.
        meta: free-form provenance (source name, parameters).
    """

    catalog: pd.DataFrame
    bands: tuple[str, ...]
    pixel_scale: float = 0.03
    cutouts: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    errors: np.ndarray | None = None
    unlabelled: pd.DataFrame | None = None
    extra_train: Dataset | None = None
    field: Dataset | None = None
    # dataclasses.field by its module: the attribute above shadows the name in this body
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.catalog.columns]
        if missing:
            raise HizkitError(f"dataset catalog lacks column(s) {', '.join(missing)}")
        n = len(self.catalog)
        if self.cutouts is not None:
            c = self.cutouts
            if c.ndim != 4 or c.shape[0] != n or c.shape[1] != len(self.bands):
                raise HizkitError(
                    f"cutouts have shape {c.shape}; expected ({n}, {len(self.bands)}, H, W)"
                )
            if c.dtype != np.float32:
                object.__setattr__(self, "cutouts", c.astype(np.float32))
        if self.errors is not None and (
            self.cutouts is None or self.errors.shape != self.cutouts.shape
        ):
            raise HizkitError("error cutouts must have the cutouts' shape")
        if self.features is not None and self.features.shape[0] != n:
            raise HizkitError(f"features have {self.features.shape[0]} rows for {n} sources")
        if "label" in self.catalog.columns:
            bad = set(self.catalog["label"].dropna()) - set(CLASSES)
            if bad:
                raise HizkitError(f"unknown label(s) {sorted(bad)}; labels are {CLASSES}")

    def __len__(self) -> int:
        return len(self.catalog)

    @property
    def y(self) -> np.ndarray:
        """Class indices into :data:`CLASSES`; -1 for unlabelled sources."""
        if "label" not in self.catalog.columns:
            return np.full(len(self), -1, dtype=int)
        codes = {c: i for i, c in enumerate(CLASSES)}
        return self.catalog["label"].map(codes).fillna(-1).to_numpy(dtype=int)

    @property
    def coverage(self) -> np.ndarray:
        """Boolean ``(N, bands, H, W)``: True where a cutout pixel has data (False off the
        mosaic's edge and where the survey has no coverage, which are NaN in ``cutouts``)."""
        if self.cutouts is None:
            raise HizkitError("this dataset has no cutouts")
        return np.isfinite(self.cutouts)

    @property
    def has_photometry(self) -> bool:
        return all(flux_col(b) in self.catalog.columns for b in self.bands)

    def photometry(self, catalog: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fluxes and errors in nJy as two ``(N, bands)`` arrays."""
        cat = self.catalog if catalog is None else catalog
        if not all(flux_col(b) in cat.columns for b in self.bands):
            raise HizkitError("this dataset has no per-band photometry")
        flux = cat[[flux_col(b) for b in self.bands]].to_numpy(dtype=float)
        err = cat[[fluxerr_col(b) for b in self.bands]].to_numpy(dtype=float)
        return flux, err

    def replace(self, **changes: Any) -> Dataset:
        """A copy with some attributes replaced (arrays are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    def subset(self, index: Sequence[int] | np.ndarray) -> Dataset:
        """The sources at ``index`` (positions), in that order. Keeps ``unlabelled``."""
        idx = np.asarray(index, dtype=int)
        return self.replace(
            catalog=self.catalog.iloc[idx].reset_index(drop=True),
            cutouts=None if self.cutouts is None else self.cutouts[idx],
            errors=None if self.errors is None else self.errors[idx],
            features=None if self.features is None else self.features[idx],
            extra_train=None,
            field=None,
        )

    def select_bands(self, bands: Sequence[str]) -> Dataset:
        """The dataset with only ``bands``, in that order (cutout planes and photometry)."""
        bands = tuple(bands)
        missing = [b for b in bands if b not in self.bands]
        if missing:
            raise HizkitError(
                f"band(s) {', '.join(missing)} missing: this dataset has {', '.join(self.bands)}"
            )
        if bands == self.bands:
            return self
        idx = [self.bands.index(b) for b in bands]
        return self.replace(
            bands=bands,
            cutouts=None if self.cutouts is None else self.cutouts[:, idx],
            errors=None if self.errors is None else self.errors[:, idx],
            features=None,
            feature_names=(),
            extra_train=None if self.extra_train is None else self.extra_train.select_bands(bands),
            field=None if self.field is None else self.field.select_bands(bands),
        )

    def concat(self, other: Dataset) -> Dataset:
        """This dataset followed by ``other`` (same bands and pixel scale)."""
        if other.bands != self.bands:
            raise HizkitError(f"cannot join datasets with bands {self.bands} and {other.bands}")

        def join(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            if a is None and b is None:
                return None
            if a is None or b is None:
                raise HizkitError("cannot join a dataset with cutouts to one without")
            return np.concatenate([a, b])

        return self.replace(
            catalog=pd.concat([self.catalog, other.catalog], ignore_index=True),
            cutouts=join(self.cutouts, other.cutouts),
            errors=None
            if self.errors is None or other.errors is None
            else np.concatenate([self.errors, other.errors]),
            features=join(self.features, other.features),
            extra_train=None,
            field=None,
        )


@dataclass(frozen=True)
class Split:
    """Positions of the train, validation and test sources; one per run, shared by all."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    seed: int

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


PARTS = ("training", "validation", "test")


def check_fractions(
    value: object, what: str = "split fractions", needs: tuple[str, ...] = ("training", "test")
) -> tuple[float, float, float]:
    """The one check of split fractions: three non-negative numbers (training, validation,
    test) summing to 1, where each part named in ``needs`` gets a share."""
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(f, int | float) and not isinstance(f, bool) for f in value)
    )
    if not ok or min(value) < 0 or abs(sum(value) - 1) > 1e-6:  # type: ignore[arg-type]
        raise HizkitError(
            f"{what} must be three non-negative numbers (training, validation, test) summing "
            f"to 1, got {value!r}"
        )
    fractions = tuple(float(f) for f in value)  # type: ignore[union-attr]
    for part in needs:
        if fractions[PARTS.index(part)] == 0:
            raise HizkitError(f"{what} {list(fractions)} leave no {part} part; it is needed")
    return fractions  # type: ignore[return-value]


def require_classes(y: np.ndarray, doing: str = "comparing classifiers") -> None:
    """The one check that labelled sources (``y >= 0``) hold at least two classes: with
    one, every classifier scores 100 % and the numbers mean nothing."""
    y = np.asarray(y)
    present, counts = np.unique(y[y >= 0], return_counts=True)
    if len(present) < 2:
        found = ", ".join(f"{CLASSES[c]}: {n}" for c, n in zip(present, counts)) or "none"
        raise HizkitError(
            f"the data has labelled sources of {len(present)} class(es) ({found}); {doing} "
            "needs at least two (accuracy on one class is meaningless)"
        )


def make_split(
    y: np.ndarray, seed: int, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
) -> Split:
    """A stratified train / validation / test split of the labelled sources.

    Each class is shuffled with ``seed`` and cut by ``fractions``; a class with at least
    three members gets at least one source in each part (the rare brown dwarfs too).
    Unlabelled sources (``y == -1``) are left out.
    """
    fractions = check_fractions(fractions, needs=())
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(y[y >= 0]):
        members = rng.permutation(np.flatnonzero(y == cls))
        n = len(members)
        n_valid = round(fractions[1] * n)
        n_test = round(fractions[2] * n)
        if n >= 3:
            n_valid = max(n_valid, 1 if fractions[1] > 0 else 0)
            n_test = max(n_test, 1 if fractions[2] > 0 else 0)
        n_train = n - n_valid - n_test
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train : n_train + n_valid])
        parts[2].append(members[n_train + n_valid :])
    train, valid, test = (np.sort(np.concatenate(p)) if p else np.empty(0, int) for p in parts)
    return Split(train=train, valid=valid, test=test, seed=seed)


def class_prior(y: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Class frequencies of the labelled entries of ``y`` (-1 is unlabelled), each count
    plus ``smoothing`` so an absent class keeps a little probability."""
    y = np.asarray(y)
    counts = np.bincount(y[y >= 0], minlength=len(CLASSES)) + smoothing
    return counts / counts.sum()


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """Per-class weights that give every present class the same total weight
    (``counts`` = members per class; absent classes get 0)."""
    counts = np.asarray(counts, dtype=float)
    present = max(np.count_nonzero(counts), 1)
    return np.where(counts > 0, counts.sum() / (present * np.maximum(counts, 1)), 0.0)


def detection_index(data: Dataset, bands: Sequence[str]) -> list[int]:
    """Positions of the detection ``bands`` present in ``data``; all bands if none is
    (e.g. in a band ablation without the red bands)."""
    idx = [data.bands.index(b) for b in bands if b in data.bands]
    return idx or list(range(len(data.bands)))


def limit_magnitudes(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    """AB magnitudes with 1-sigma upper limits: the flux where S/N > 1, else the 1-sigma
    error, so a dropout gives a faint, finite magnitude. NaN where the flux or its error
    is missing (no coverage is not a non-detection)."""
    flux = np.asarray(flux, dtype=float)
    err = np.asarray(err, dtype=float)
    valid = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    with np.errstate(invalid="ignore"):
        value = np.where(flux > err, flux, err)
    return ab_mag(np.where(valid, value, np.nan))


def colour_features(
    data: Dataset, catalog: pd.DataFrame | None = None, fill: np.ndarray | None = None
) -> np.ndarray:
    """Adjacent-band colours and the reddest-band magnitude, ``(N, bands)``.

    Magnitudes are :func:`limit_magnitudes`, so a dropout gives a large, finite colour;
    a missing band stays NaN, or becomes ``fill`` (one value per column, learned on the
    training set with :func:`column_fill`, never from the batch being predicted).
    ``catalog`` defaults to the dataset's own.
    """
    mag = limit_magnitudes(*data.photometry(catalog))
    feats = np.column_stack([mag[:, :-1] - mag[:, 1:], mag[:, -1]])
    return feats if fill is None else impute(feats, fill)


def column_fill(x: np.ndarray) -> np.ndarray:
    """Per-column medians of the finite values (0 for a column with none): imputation
    values to learn in ``fit`` and apply with :func:`impute`."""
    x = np.asarray(x, dtype=float)
    finite = np.where(np.isfinite(x), x, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(finite, axis=0) if len(x) else np.zeros(x.shape[1])
    return np.where(np.isfinite(med), med, 0.0)


def impute(x: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``x`` with every non-finite value replaced by its column's ``fill``."""
    x = np.asarray(x, dtype=float)
    return np.where(np.isfinite(x), x, np.asarray(fill, dtype=float)[None, :])
