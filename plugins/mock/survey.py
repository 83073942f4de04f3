"""Building the simulated survey: detection, cutouts, catalogs and the on-disk cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.atomic import clean_stale, replace_file
from hizkit.cuts import QualityCuts, describe, stack_snr
from hizkit.dataset import CLASSES, NIRCAM_BANDS, Dataset, flux_col, fluxerr_col, radius_col
from hizkit.errors import HizkitError
from hizkit.plugins.mock import images, photoz
from hizkit.plugins.mock.population import DRAW, HIGHZ_MIX, Sources, draw_lowz
from hizkit.science import DETECTION_BANDS, redshift_labels

CACHE_VERSION = 2
#: class mix of the unlabelled photometric catalog (JADES-like: z > 4 photo-z ~ 12 %)
UNLABELLED_MIX = {"lowz": 0.875, "highz": 0.12, "brown_dwarf": 0.005}
FIELD_CENTRE = (53.16, -27.78)  # GOODS-S


def cache_dir() -> Path:
    if "HIZKIT_CACHE_DIR" in os.environ:
        return Path(os.environ["HIZKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hizkit"


def _catalog_noise(rng, n: int, depth_scatter: float) -> np.ndarray:
    """Per-pixel noise per source and band (depth varies across a mosaic)."""
    return images.local_sigma(rng, n, depth_scatter)


def _analytic_photometry(rng, src: Sources, size: int, sigma: np.ndarray) -> dict[str, np.ndarray]:
    """Catalog photometry without images, matched to :func:`images.measure` (same aperture,
    same corrections, same noise): used for detection and the unlabelled catalog."""
    frac, rad = images.interpolate_profile(size, src.re, src.sersic)
    _, apcorr, noise = images.aperture_terms(size)
    err = sigma * noise * apcorr
    flux = src.flux * frac + rng.normal(0, 1, err.shape) * err
    snr = np.abs(flux) / err
    # flux radii of faint sources are noisy, as SExtractor's are
    radius = rad * (1 + rng.normal(0, 1, rad.shape) * np.minimum(0.5, 1.5 / np.maximum(snr, 1)))
    return {"flux": flux, "err": err, "radius": np.clip(radius, 0.005, None)}


def detection_snr(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    """S/N in the inverse-variance-weighted stack of the detection bands (EPOCHS-style),
    from ``(N, 7)`` arrays in the order of NIRCAM_BANDS."""
    idx = [NIRCAM_BANDS.index(b) for b in DETECTION_BANDS]
    return stack_snr(flux[:, idx], err[:, idx])


def cut_frame(phot: dict[str, np.ndarray]) -> pd.DataFrame:
    """The photometry and its template photo-z in the catalog columns the cuts read."""
    fit = pd.DataFrame(photoz.fit(phot["flux"], phot["err"]))
    fit["chi2_phot"] = np.minimum(fit["chi2_lowz"], fit["chi2_highz"])
    return fit.assign(
        **{flux_col(b): phot["flux"][:, i] for i, b in enumerate(NIRCAM_BANDS)},
        **{fluxerr_col(b): phot["err"][:, i] for i, b in enumerate(NIRCAM_BANDS)},
    )


def preselect(phot: dict[str, np.ndarray], cuts: QualityCuts | None) -> np.ndarray:
    """A loosened version of the quality cuts on analytic photometry: it spares rendering
    candidates that will almost surely fail the exact cuts made on their images."""
    if cuts is None or not cuts.active:
        return np.ones(len(phot["flux"]), dtype=bool)
    loose = dataclasses.replace(
        cuts,
        min_snr=None if cuts.min_snr is None else 0.7 * cuts.min_snr,
        max_pdf_width=None if cuts.max_pdf_width is None else 2 * cuts.max_pdf_width,
        max_chi2=None if cuts.max_chi2 is None else 2 * cuts.max_chi2,
        drop_stars=False,
    )
    if loose.max_pdf_width is None and loose.max_chi2 is None:
        frame = pd.DataFrame(
            {flux_col(b): phot["flux"][:, i] for i, b in enumerate(NIRCAM_BANDS)}
            | {fluxerr_col(b): phot["err"][:, i] for i, b in enumerate(NIRCAM_BANDS)}
        )
    else:
        frame = cut_frame(phot)
    return loose.apply(frame)[0]


def draw_detected(
    rng,
    label: str,
    n: int,
    size: int,
    depth_scatter: float,
    min_snr: float,
    cuts: QualityCuts | None = None,
) -> Sources:
    """Draw sources of one class until ``n`` pass the detection cut (and, for galaxies,
    a loosened version of ``cuts``). Bounded: when the pass rate seen after
    :data:`MIN_BATCHES` batches says that more than :data:`MAX_BATCHES` would be needed
    (none passing at all, e.g. ``min_snr = 1e9``), a one-line error names the setting to
    relax."""
    kept: list[Sources] = []
    total = 0
    batch = max(64, 2 * n)
    drawn = detected = 0
    batches = 0
    while total < n:
        src = DRAW[label](rng, batch)
        phot = _analytic_photometry(rng, src, size, _catalog_noise(rng, batch, depth_scatter))
        ok = detection_snr(phot["flux"], phot["err"]) >= min_snr
        detected += int(ok.sum())
        if label != "brown_dwarf":
            ok &= preselect(phot, cuts)
        ok = np.flatnonzero(ok)
        kept.append(src.take(ok[: n - total]))
        total += min(ok.size, n - total)
        drawn += batch
        batches += 1
        if total < n and batches >= MIN_BATCHES:
            needed = batches * n / total if total else np.inf
            if needed > MAX_BATCHES:
                raise _nothing_passes(label, n, total, drawn, detected, min_snr, cuts)
    return Sources.join(kept) if kept else DRAW[label](rng, 0)


#: batches drawn before the pass rate is judged, and the most a class may need
MIN_BATCHES, MAX_BATCHES = 20, 2000
#: rendering rounds without a single kept source before the labelled set gives up
MAX_EMPTY_ROUNDS = 10


def _nothing_passes(
    label: str, n: int, total: int, drawn: int, detected: int, min_snr: float, cuts
) -> HizkitError:
    if detected == 0 or label == "brown_dwarf":
        culprit = f"the detection cut (detection_snr = {min_snr:g})"
        relax = "lower detection_snr"
    else:
        culprit = f"the quality cuts ({_cuts_text(cuts)})"
        relax = "relax quality_cuts (min_snr, max_pdf_width, max_chi2)"
    return HizkitError(
        f"mock: {total} of {n} {label} sources after drawing {drawn} candidates "
        f"({detected} detected): {culprit} lets (almost) none through; {relax}"
    )


def _cuts_text(cuts: QualityCuts | None) -> str:
    if cuts is None:
        return "none"
    fields = dataclasses.asdict(cuts)
    return ", ".join(f"{k} = {v}" for k, v in fields.items() if v not in (None, False)) or "none"


def quotas(counts: dict[str, int], labels: str) -> dict[tuple[str, str | None], int]:
    """How many labelled sources of each (class, kind): with true labels the high-z class
    holds its kinds in the shares of :data:`HIGHZ_MIX` (largest remainders); otherwise
    only class counts are fixed (kind None)."""
    out: dict[tuple[str, str | None], int] = {}
    for c in CLASSES:
        if c == "highz" and labels == "truth" and counts[c] > 0:
            share = np.array(list(HIGHZ_MIX.values())) * counts[c]
            n = np.floor(share).astype(int)
            n[np.argsort(n - share)[: counts[c] - n.sum()]] += 1
            out.update({(c, k): int(v) for k, v in zip(HIGHZ_MIX, n)})
        else:
            out[c, None] = counts[c]
    return out


def _draw_sizes(need: dict[tuple[str, str | None], int]) -> dict[str, int]:
    """Candidates to draw per class so that every (class, kind) quota is likely met."""
    sizes = {}
    for c in CLASSES:
        want = 0.0
        for (cls, kind), n in need.items():
            if cls == c and n > 0:
                want = max(want, n / (HIGHZ_MIX[kind] if kind else 1.0))
        sizes[c] = int(1.3 * want) + 2 if want else 0
    return sizes


def assign_labels(true_label: np.ndarray, z_phot: np.ndarray, labels: str) -> np.ndarray:
    """Class labels: the true class (``labels='truth'``) or, as a real survey has to,
    galaxies labelled from their photometric redshift (``'photoz'``: z_phot >= 4 is
    high-z); brown dwarfs keep their label either way."""
    if labels == "truth":
        return np.asarray(true_label)
    galaxy_label = redshift_labels(z_phot).astype(str)
    return np.where(true_label == "brown_dwarf", "brown_dwarf", galaxy_label)


def _positions(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    ra0, dec0 = FIELD_CENTRE
    dec = dec0 + rng.uniform(-0.05, 0.05, n)
    ra = ra0 + rng.uniform(-0.05, 0.05, n) / np.cos(np.deg2rad(dec0))
    return ra, dec


def _catalog(
    src: Sources, phot: dict[str, np.ndarray], ids: np.ndarray, rng, labelled: bool
) -> pd.DataFrame:
    ra, dec = _positions(rng, len(src))
    cols: dict[str, Any] = {"id": ids, "ra": ra, "dec": dec}
    for b, band in enumerate(NIRCAM_BANDS):
        cols[flux_col(band)] = phot["flux"][:, b]
        cols[fluxerr_col(band)] = phot["err"][:, b]
        cols[radius_col(band)] = phot["radius"][:, b]
    cols["snr_det"] = detection_snr(phot["flux"], phot["err"])
    # truth, for evaluation only: classifiers must not read these
    cols["z"] = src.z
    cols["kind"] = src.kind
    cols["teff"] = src.teff
    cols["feh"] = src.feh
    cols["age"] = src.age
    cols["av"] = src.av
    cols["re_true"] = src.re
    if labelled:
        cols["label"] = src.label
    return pd.DataFrame(cols)


def build(params: dict[str, Any]) -> Dataset:
    """The survey for a parameter set (see :class:`hizkit.plugins.mock.MockSurvey`)."""
    rng = np.random.default_rng(params["seed"])
    size = params["cutout_size"]
    counts = {
        "lowz": params["n_lowz"],
        "highz": params["n_highz"],
        "brown_dwarf": params["n_brown_dwarfs"],
    }
    cuts = QualityCuts.from_dict(params["quality_cuts"])
    common = dict(depth_scatter=params["depth_scatter"], min_snr=params["detection_snr"])
    passed: list[tuple[str, int]] = []

    def labelled_set(counts: dict[str, int], first_id: int, rng) -> Dataset:
        """Render candidates, measure them on their own images, keep those detected
        (S/N in the detection stack >= detection_snr) whose galaxies pass the quality
        cuts, until every class has its count. Brown dwarfs are found by their own
        (atmosphere-fit) route and are not cut on photo-z."""
        need = quotas(counts, params["labels"])
        parts: list[tuple[Sources, np.ndarray, dict[str, np.ndarray], pd.DataFrame]] = []
        rounds = empty = 0
        while sum(need.values()) > 0:
            rounds += 1
            if empty >= MAX_EMPTY_ROUNDS:  # the exact cuts on the images pass nothing
                left = {c: n for (c, _), n in need.items() if n > 0}
                raise HizkitError(
                    f"mock: {MAX_EMPTY_ROUNDS} rounds of rendered candidates kept none of the "
                    f"{left} still needed: the quality cuts ({_cuts_text(cuts)}) or "
                    f"detection_snr = {params['detection_snr']:g} on the measured images pass "
                    "(almost) nothing; relax them"
                )
            if rounds == 25:  # a kind that (almost) never passes the cuts: fill from its class
                for (c, kind), n in list(need.items()):
                    if kind is not None and n > 0:
                        need[c, kind] = 0
                        need[c, None] = need.get((c, None), 0) + n
            extra = _draw_sizes(need)
            src = Sources.join(
                [draw_detected(rng, c, extra[c], size, **common, cuts=cuts) for c in CLASSES]
            )
            n_pool = int(3 * params["neighbour_rate"] * len(src)) + 10
            pool = draw_lowz(rng, n_pool, faint=31.0)
            cut, sigma, _ = images.render_cutouts(
                rng,
                src,
                pool,
                size,
                neighbour_rate=params["neighbour_rate"],
                coverage_loss=params["coverage_loss"],
                depth_scatter=params["depth_scatter"],
            )
            phot = images.measure(cut, sigma)
            frame = cut_frame(phot)
            fit = frame[[c for c in frame.columns if not c.startswith("flux")]]
            detected = detection_snr(phot["flux"], phot["err"]) >= params["detection_snr"]
            galaxy = src.label != "brown_dwarf"
            good, steps = cuts.apply(frame[detected], only=galaxy[detected])
            ok = np.zeros(len(src), dtype=bool)
            ok[np.flatnonzero(detected)[good]] = True
            passed.append(("rendered", len(src)))
            passed.extend([("detected", int(detected.sum())), *steps[1:]])
            label = assign_labels(src.label, fit["z_phot"].to_numpy(), params["labels"])
            keep = []
            for (c, kind), n in need.items():
                sel = ok & (label == c) if kind is None else ok & (label == c) & (src.kind == kind)
                idx = np.flatnonzero(sel)[:n]
                need[c, kind] -= idx.size
                keep.append(idx)
            k = np.concatenate(keep)
            empty = 0 if k.size else empty + 1
            parts.append((src.take(k), cut[k], {key: v[k] for key, v in phot.items()}, fit.iloc[k]))
        src = Sources.join([p[0] for p in parts])
        cut = np.concatenate([p[1] for p in parts])
        phot = {key: np.concatenate([p[2][key] for p in parts]) for key in parts[0][2]}
        fit = pd.concat([p[3] for p in parts], ignore_index=True)
        order = rng.permutation(len(src))
        src, cut, fit = src.take(order), cut[order], fit.iloc[order].reset_index(drop=True)
        phot = {key: v[order] for key, v in phot.items()}
        cat = _catalog(src, phot, np.arange(first_id, first_id + len(src)), rng, labelled=True)
        for key in fit.columns:
            cat[key] = fit[key].to_numpy()
        cat["label_true"] = cat["label"]
        cat["label"] = assign_labels(src.label, cat["z_phot"].to_numpy(), params["labels"])
        return Dataset(cat, NIRCAM_BANDS, images.PIXEL, cut)

    training = None
    if params.get("training_set", "curated") == "field":
        from hizkit.plugins.mock import field_training

        main, extra, training = field_training.labelled(params)
    else:
        progress.log("simulating the labelled set")
        main = labelled_set(counts, 1, rng)
        extra = None
        if params["n_extra_brown_dwarfs"] > 0:
            extra_counts = {"lowz": 0, "highz": 0, "brown_dwarf": params["n_extra_brown_dwarfs"]}
            extra = labelled_set(
                extra_counts, 10_000_001, np.random.default_rng([params["seed"], 1])
            )

    unlabelled = None
    n_u = params["n_unlabelled"]
    if n_u > 0:
        progress.log(f"simulating {n_u} unlabelled catalog sources")
        urng = np.random.default_rng([params["seed"], 2])
        n_cls = {c: round(UNLABELLED_MIX[c] * n_u) for c in CLASSES}
        n_cls["lowz"] += n_u - sum(n_cls.values())
        src = Sources.join([draw_detected(urng, c, n_cls[c], size, **common) for c in CLASSES])
        src = src.take(urng.permutation(len(src)))
        phot = _analytic_photometry(
            urng, src, size, _catalog_noise(urng, len(src), params["depth_scatter"])
        )
        lost = urng.random(phot["flux"].shape) < params["coverage_loss"] / 7
        for key in phot:
            phot[key] = np.where(lost, np.nan, phot[key])
        unlabelled = _catalog(src, phot, np.arange(1_000_001, 1_000_001 + n_u), urng, False)

    field = None
    if params.get("field_sources", 0) > 0:
        from hizkit.plugins.mock import field as field_module

        field = field_module.simulate(
            params["field_sources"],
            params["seed"],
            cutout_size=size,
            mix=params.get("field_mix"),
            depth_scatter=params["depth_scatter"],
            coverage_loss=params["coverage_loss"],
            detection_snr=params["detection_snr"],
        ).data

    meta = {"source": "mock", **params}
    if training is not None:
        meta["training"] = training
    elif cuts.active:
        totals: dict[str, int] = {}
        for name, n in passed:
            totals[name] = totals.get(name, 0) + n
        meta["cuts"] = list(totals.items())
        progress.log("labelled candidates: " + describe(list(totals.items())))
    return main.replace(unlabelled=unlabelled, extra_train=extra, field=field, meta=meta)


# ---------------------------------------------------------------- cache (no pickles)


#: core modules the build runs (quality cuts, catalog columns): part of the cache key
CORE_MODULES = ("cuts.py", "dataset.py", "science.py")
#: libraries whose numbers the build depends on: their versions are part of the key
LIBRARIES = ("numpy", "scipy", "pandas", "galsim", "bagpipes", "astropy")


def cache_key(params: dict[str, Any]) -> str:
    """Digest of the parameters, of the simulator's own source, of the core modules it
    runs and of the versions of the libraries it computes with, so that a change to any
    of them never serves a stale survey."""
    import hizkit

    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **params}, sort_keys=True).encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    core = Path(hizkit.__file__).parent
    for name in CORE_MODULES:
        digest.update((core / name).read_bytes())
    digest.update(json.dumps(library_versions(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _frame_arrays(prefix: str, frame: pd.DataFrame | None) -> dict[str, np.ndarray]:
    if frame is None:
        return {}
    out = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        if values.dtype == object:
            values = values.astype(str)
        out[f"{prefix}/{col}"] = values
    return out


def _frame(prefix: str, arrays: dict[str, np.ndarray]) -> pd.DataFrame | None:
    cols = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
    return pd.DataFrame(cols) if cols else None


def save(ds: Dataset, path: Path) -> None:
    arrays = {
        **_frame_arrays("catalog", ds.catalog),
        **_frame_arrays("unlabelled", ds.unlabelled),
        "cutouts": ds.cutouts,
    }
    if ds.extra_train is not None:
        arrays.update(_frame_arrays("extra", ds.extra_train.catalog))
        arrays["extra_cutouts"] = ds.extra_train.cutouts
    if ds.field is not None:
        cat = ds.field.catalog.copy()
        cat["label"] = cat["label"].fillna("")  # a spurious detection has no label
        cat["label_true"] = cat["label_true"].fillna("")
        arrays.update(_frame_arrays("field", cat))
        arrays["field_cutouts"] = ds.field.cutouts
        arrays["field_meta"] = np.array(json.dumps(ds.field.meta))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_cache(path.parent)
        with replace_file(path) as tmp:
            np.savez(tmp, meta=np.array(json.dumps(ds.meta)), **arrays)
    except OSError as exc:  # a read-only or full cache: the survey is still in memory
        progress.warn(
            f"cannot write the survey cache in {path.parent} ({exc.strerror or exc}); "
            "using the survey built in memory (it is built again next time; set "
            "HIZKIT_CACHE_DIR to a writable directory to keep it)"
        )


#: hidden temporaries of a build older than this (seconds) are left-overs of a kill
STALE_SECONDS = 24 * 3600


def clean_cache(directory: Path) -> None:
    """Remove partial cache files left by killed processes: hizkit's temporaries whose
    process is gone (see :func:`hizkit.atomic.clean_stale`), and hidden ``.mock-*`` /
    ``.sps-library-*`` temporaries of older versions untouched for a day."""
    import time

    removed = clean_stale(directory)
    now = time.time()
    for pattern in (".mock-*", ".sps-library-*"):
        for entry in directory.glob(pattern):
            try:
                if entry.is_file() and now - entry.stat().st_mtime > STALE_SECONDS:
                    entry.unlink()
                    removed.append(entry)
            except OSError:
                pass
    if removed:
        progress.log(f"removed {len(removed)} partial cache file(s) left by killed runs")


def load(path: Path) -> Dataset:
    """A cached survey; a damaged file (truncated, bit-flipped: the zip CRC fails, or
    anything unreadable in it) is reported in one line and raised as ``ValueError`` so
    that the caller rebuilds it."""
    try:
        return _load(path)
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        TypeError,
        zipfile.BadZipFile,
        zlib.error,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        progress.warn(f"the cached survey {path.name} is damaged ({reason}); rebuilding it")
        raise ValueError(f"damaged cache file {path}") from None


def _load(path: Path) -> Dataset:
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    extra = None
    if "extra_cutouts" in arrays:
        extra = Dataset(
            _frame("extra", arrays), NIRCAM_BANDS, images.PIXEL, arrays["extra_cutouts"]
        )
    field = None
    if "field_cutouts" in arrays:
        cat = _frame("field", arrays)
        for col in ("label", "label_true"):
            values = [None if v == "" else v for v in cat[col].to_numpy(dtype=object)]
            cat[col] = pd.Series(values, dtype=object)
        field = Dataset(
            cat,
            NIRCAM_BANDS,
            images.PIXEL,
            arrays["field_cutouts"],
            meta=json.loads(str(arrays["field_meta"])),
        )
    return Dataset(
        _frame("catalog", arrays),
        NIRCAM_BANDS,
        images.PIXEL,
        arrays["cutouts"],
        unlabelled=_frame("unlabelled", arrays),
        extra_train=extra,
        field=field,
        meta=meta,
    )
