"""Classifying a new field with a trained model, in chunks of bounded memory.

``hizkit predict --model models/cnn --data jades:DIR --out candidates/`` reads the field's
catalog once, orders the sources by declination (so each chunk cuts a strip of the
memory-mapped mosaics), and streams chunks through cutouts -> fitted preprocessors ->
classifier -> rows. Each finished chunk is written atomically to ``OUT/chunks/``; an
interrupted run continues with ``--resume`` and skips the finished chunks. At the end it
writes, each atomically:

- ``candidates.csv`` and ``candidates.fits``: one row per source, in catalog order
  (:func:`candidate_table`, with the flags of :func:`source_flags`);
- ``candidates.reg``: a DS9 region file of the sources predicted high-z or brown dwarf;
- ``candidates.html``: the ``top`` most probable high-z galaxies and brown dwarfs with
  their cutouts in every band.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.atomic import jsonable, refuse_existing, replace_file
from hizkit.contracts import DataSource
from hizkit.cuts import detection_magnitude
from hizkit.dataset import CLASSES, Dataset
from hizkit.errors import HizkitError
from hizkit.field import MIN_PURITY, select
from hizkit.model import TrainedModel, load_model
from hizkit.registry import get_registry
from hizkit.science import DETECTION_BANDS

SPEC = "predict.json"
FILES = ("candidates.csv", "candidates.fits", "candidates.reg", "candidates.html")


@dataclass
class PredictSpec:
    """What a prediction run is: ``--resume`` continues only the same run."""

    model: str
    model_sha256: str
    data: str
    data_params: dict[str, Any]
    chunk_size: int
    n_sources: int
    min_purity: float | None = None
    threshold: float | None = None
    priors: list[float] | str | None = None

    def differences(self, other: dict[str, Any]) -> list[str]:
        mine = json.loads(json.dumps(asdict(self)))
        return [k for k in mine if mine[k] != other.get(k)]


def model_digest(model: TrainedModel) -> str:
    files = model.manifest.get("files", {})
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def field_source(
    model: TrainedModel,
    name: str,
    params: dict[str, Any] | None = None,
    registry: Any = None,
) -> DataSource:
    """The data source ``name`` set up to read a field for ``model``: its
    ``field_params`` (no labels needed), then the model's bands and cutout size where the
    source takes them, then ``params`` (the user's, which win)."""

    cls = (registry or get_registry()).get("data_source", name)
    merged = {**cls.field_params, **(params or {})}
    known = cls.param_names()
    size = model.manifest.get("cutout_size")
    for key, value in (("bands", list(model.bands)), ("cutout_size", size and size[0])):
        if key in known and key not in merged and value:
            merged[key] = value
    return cls.create(**merged)  # type: ignore[return-value]


def chunk_plan(catalog: pd.DataFrame, chunk_size: int) -> list[np.ndarray]:
    """Row positions of each chunk: sources ordered by declination, then RA, so a chunk
    covers one strip of the mosaic (memory-mapped reads stay local)."""
    order = np.lexsort((catalog["ra"].to_numpy(float), catalog["dec"].to_numpy(float)))
    return [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]


def predict_chunk(
    model: TrainedModel, source: DataSource, location: str | None, part: Dataset
) -> pd.DataFrame:
    """The candidate rows of one chunk of the field's catalog."""
    if model.needs_cutouts:
        part = source.load_cutouts(location, part)
    return candidate_table(model, part, model.predict_proba(part))


#: models loaded by this (worker) process, by directory and content digest
_WORKER_MODELS: dict[tuple[str, str], TrainedModel] = {}


def chunk_task(
    model_path: str,
    digest: str,
    source_name: str,
    source_params: dict[str, Any],
    location: str | None,
    part: Dataset,
    rows: np.ndarray,
    path: str,
) -> str:
    """One chunk on a Dask worker: the model is loaded once per worker process, the
    chunk's rows written atomically to ``path`` (a task retried after a lost worker
    rewrites the same file, so every source appears exactly once)."""
    from hizkit.registry import get_registry

    key = (model_path, digest)
    if key not in _WORKER_MODELS:
        model = load_model(model_path)
        if model_digest(model) != digest:
            raise HizkitError(f"{model_path} changed while the prediction ran")
        _WORKER_MODELS[key] = model
    source = get_registry().create("data_source", source_name, **source_params)
    write_chunk(predict_chunk(_WORKER_MODELS[key], source, location, part), rows, Path(path))
    return path


def write_chunk(table: pd.DataFrame, rows: np.ndarray, path: Path) -> None:
    table.insert(0, "row", rows)
    with replace_file(path) as tmp:
        table.to_csv(tmp, index=False)


def predict_field(
    model: TrainedModel,
    source: DataSource,
    location: str | None,
    out: str | Path,
    *,
    chunk_size: int = 1024,
    top: int = 25,
    resume: bool = False,
    data_name: str = "",
    scheduler: str | None = None,
    min_purity: float | None = MIN_PURITY,
    threshold: float | None = None,
    priors: Sequence[float] | str = "sky",
) -> pd.DataFrame:
    """Classify every source of the field; write the candidate files into ``out``.

    ``scheduler`` (see :mod:`hizkit.cluster`) sends each chunk to a Dask worker; the
    table is the same as in-process. The high-z and brown-dwarf lists (``selected_*``)
    are drawn at ``min_purity`` or at ``threshold`` (:func:`hizkit.field.select`), and
    ``selection.json`` states the priors, thresholds and expected purity."""
    if chunk_size < 1:
        raise HizkitError(f"the chunk size must be at least 1, got {chunk_size}")
    if top < 0:
        raise HizkitError(f"--top must be 0 or more, got {top}")
    out = Path(out)
    if not resume:
        refuse_existing(out)
    elif not (out / SPEC).is_file():
        raise HizkitError(f"{out} holds no interrupted prediction to resume ({SPEC} missing)")
    progress.log("reading the catalog")
    catalog = model.check_catalog(source.load_catalog(location))
    spec = PredictSpec(
        model=str(model.path or model.label),
        model_sha256=model_digest(model),
        data=data_name,
        data_params=source.get_params(),
        chunk_size=chunk_size,
        n_sources=len(catalog),
        min_purity=min_purity,
        threshold=threshold,
        priors=priors if isinstance(priors, str) else [float(p) for p in priors],
    )
    chunk_dir = out / "chunks"
    if resume:
        saved = json.loads((out / SPEC).read_text())
        diff = spec.differences(saved)
        if diff:
            raise HizkitError(
                f"{out} was started with a different {', '.join(diff)}; it cannot be resumed "
                "with these settings"
            )
        if all((out / f).is_file() for f in FILES):
            progress.warn(f"{out} is already complete")
            return read_table(out / "candidates.csv")
    else:
        chunk_dir.mkdir(parents=True)
        with replace_file(out / SPEC) as tmp:
            tmp.write_text(json.dumps(asdict(spec), indent=2, default=str))
    plan = chunk_plan(catalog.catalog, chunk_size)
    paths = [chunk_dir / f"chunk-{k:06d}.csv" for k in range(len(plan))]
    todo = [k for k, p in enumerate(paths) if not p.is_file()]
    if len(todo) < len(plan):
        progress.log(f"resuming: {len(plan) - len(todo)} of {len(plan)} chunks are done")
    what = f"classifying {len(catalog)} sources"
    if scheduler and todo:
        _predict_on_cluster(model, source, location, catalog, plan, paths, todo, scheduler, what)
    else:
        for k in progress.track(todo, what):
            rows = predict_chunk(model, source, location, catalog.subset(plan[k]))
            write_chunk(rows, plan[k], paths[k])
    table = gather_chunks(chunk_dir, len(plan), len(catalog))
    proba = table[[f"p_{c}" for c in CLASSES]].to_numpy(float)
    columns, statement = select(
        proba,
        model.calibration,
        model.selection,
        min_purity=min_purity,
        threshold=threshold,
        priors=priors,
    )
    for name, values in columns.items():
        table[name] = values
    with replace_file(out / "selection.json") as tmp:
        tmp.write_text(json.dumps(jsonable(statement), indent=2))
    write_outputs(table, model, source, location, catalog, out, top, statement)
    shutil.rmtree(chunk_dir, ignore_errors=True)
    return table


def _predict_on_cluster(
    model: TrainedModel,
    source: DataSource,
    location: str | None,
    catalog: Dataset,
    plan: list[np.ndarray],
    paths: list[Path],
    todo: list[int],
    scheduler: str,
    what: str,
) -> None:
    from distributed import as_completed

    from hizkit.cluster import connect

    if model.path is None:
        raise HizkitError("--scheduler needs a saved model: a directory every worker can read")
    digest = model_digest(model)
    with connect(scheduler) as client:
        progress.log(
            f"Dask: {len(todo)} chunks on {len(client.scheduler_info()['workers'])} workers"
        )
        futures = [
            client.submit(
                chunk_task,
                str(Path(model.path).absolute()),
                digest,
                source.name,
                source.get_params(),
                location,
                catalog.subset(plan[k]),
                plan[k],
                str(paths[k].absolute()),
                key=f"hizkit-chunk-{k}-{digest[:12]}",
                retries=2,
            )
            for k in todo
        ]
        for future in progress.track(as_completed(futures), what, total=len(futures)):
            future.result()  # a task's HizkitError arrives here as itself


def gather_chunks(chunk_dir: Path, n_chunks: int, n_sources: int) -> pd.DataFrame:
    """The finished chunks as one table in catalog order (each source exactly once)."""
    parts = [read_table(chunk_dir / f"chunk-{k:06d}.csv") for k in range(n_chunks)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"row": []})
    rows = table["row"].to_numpy()
    if len(rows) != n_sources or len(np.unique(rows)) != n_sources:
        raise HizkitError(f"{chunk_dir}: the chunks do not hold every source exactly once")
    return table.sort_values("row").drop(columns="row").reset_index(drop=True)


def read_table(path: Path) -> pd.DataFrame:
    """A candidate table written as CSV (``missing_bands`` stays text, "" when none)."""
    return pd.read_csv(path, converters={"missing_bands": str})


# ---------------------------------------------------------------------- candidate table


def source_flags(model: TrainedModel, data: Dataset) -> pd.DataFrame:
    """Per-source flags: ``flag_edge`` (part of the cutout off the mosaic or without
    coverage), ``flag_missing_band`` with ``missing_bands`` (a band without data at the
    source: no catalog flux, or no coverage at the cutout centre) and
    ``flag_outside_domain`` (brighter or fainter in the detection bands than every
    training source)."""
    data = data.select_bands([b for b in model.bands if b in data.bands])
    n = len(data)
    missing = np.zeros((n, len(data.bands)), dtype=bool)
    edge = np.zeros(n, dtype=bool)
    if data.has_photometry:
        flux, _ = data.photometry()
        missing |= ~np.isfinite(flux)
    if data.cutouts is not None:
        cut = data.cutouts
        h, w = cut.shape[2:]
        centre = cut[:, :, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1]
        no_centre = ~np.isfinite(centre).any(axis=(2, 3))
        missing |= no_centre
        edge = (~np.isfinite(cut)).any(axis=(2, 3)) & ~no_centre
        edge = edge.any(axis=1)
    outside = np.zeros(n, dtype=bool)
    domain = model.manifest.get("domain") or {}
    if domain.get("min") is not None and data.has_photometry:
        mag = detection_magnitude(data.catalog, domain.get("bands", DETECTION_BANDS))
        with np.errstate(invalid="ignore"):
            outside = (mag < domain["min"]) | (mag > domain["max"])
    names = np.array(data.bands)
    return pd.DataFrame(
        {
            "flag_edge": edge,
            "flag_missing_band": missing.any(axis=1),
            "missing_bands": [",".join(names[m]) for m in missing],
            "flag_outside_domain": outside,
        }
    )


def candidate_table(model: TrainedModel, data: Dataset, proba: np.ndarray) -> pd.DataFrame:
    """One row per source: ``id, ra, dec, p_lowz, p_highz, p_brown_dwarf, predicted``,
    the catalog photo-z ``z_phot`` when present (and the ``label`` when the data has one,
    e.g. simulated fields), then the flags of :func:`source_flags`."""
    cat = data.catalog
    table = pd.DataFrame({"id": cat["id"].to_numpy(), "ra": cat["ra"], "dec": cat["dec"]})
    for i, name in enumerate(CLASSES):
        table[f"p_{name}"] = proba[:, i]
    table["predicted"] = np.asarray(CLASSES, dtype=object)[np.argmax(proba, axis=1)]
    for col in ("z_phot", "label"):
        if col in cat.columns:
            table[col] = cat[col].to_numpy()
    flags = source_flags(model, data)
    return pd.concat([table.reset_index(drop=True), flags], axis=1)


# ---------------------------------------------------------------------- outputs


def write_outputs(
    table: pd.DataFrame,
    model: TrainedModel,
    source: DataSource,
    location: str | None,
    catalog: Dataset,
    out: Path,
    top: int,
    statement: dict[str, Any] | None = None,
) -> None:
    with replace_file(out / "candidates.csv") as tmp:
        table.to_csv(tmp, index=False)
    with replace_file(out / "candidates.fits") as tmp:
        fits_table(table, model).write(tmp, format="fits", overwrite=True)
    with replace_file(out / "candidates.reg") as tmp:
        tmp.write_text(ds9_regions(table))
    picks = top_candidates(table, top)
    cutouts = None
    if picks:
        index = np.unique(np.concatenate([idx for _, idx in picks]))
        try:
            part = source.load_cutouts(location, catalog.subset(index)).select_bands(model.bands)
            cutouts = dict(zip(index.tolist(), part.cutouts, strict=True))
        except HizkitError as exc:
            progress.warn(f"no cutouts for the HTML page: {exc}")
    with replace_file(out / "candidates.html") as tmp:
        tmp.write_text(candidates_html(table, model, picks, cutouts, statement))


def fits_table(table: pd.DataFrame, model: TrainedModel):
    """The candidate table as an astropy Table with units and provenance keywords."""
    from astropy import units as u
    from astropy.table import Table

    t = Table(
        {
            c: np.array(table[c].astype(str).tolist(), dtype=str)
            if pd.api.types.is_string_dtype(table[c]) or table[c].dtype == object
            else table[c].to_numpy()
            for c in table.columns
        }
    )
    t["ra"].unit = u.deg
    t["dec"].unit = u.deg
    t.meta["MODEL"] = model.label
    t.meta["CLASSIF"] = model.manifest.get("classifier", {}).get("plugin", "")
    t.meta["HIZKIT"] = model.manifest.get("versions", {}).get("hizkit", "")
    t.meta["BANDS"] = ",".join(model.bands)
    return t


def members(table: pd.DataFrame, name: str) -> np.ndarray:
    """Rows of the list of class ``name``: ``selected_<name>`` (drawn at a stated
    purity, :func:`hizkit.field.select`) when the table has it, else ``predicted``."""
    column = f"selected_{name}"
    chosen = table[column].to_numpy(bool) if column in table else table["predicted"] == name
    return table.index[chosen].to_numpy()


def list_score(table: pd.DataFrame, name: str) -> str:
    """The column a list is ranked and labelled by: the probability at the field's
    priors when the table has it."""
    return f"p_field_{name}" if f"p_field_{name}" in table else f"p_{name}"


def ds9_regions(table: pd.DataFrame, radius_arcsec: float = 0.5) -> str:
    """DS9 regions (fk5) for the high-z (cyan) and brown-dwarf (red) lists."""
    lines = [
        "# Region file format: DS9 version 4.1",
        "# hizkit predict: high-z candidates (cyan) and brown dwarfs (red)",
        'global font="helvetica 10 normal" width=2',
        "fk5",
    ]
    for name, colour in (("highz", "cyan"), ("brown_dwarf", "red")):
        col = list_score(table, name)
        for i in members(table, name):
            row = table.loc[i]
            lines.append(
                f'circle({row["ra"]:.7f},{row["dec"]:.7f},{radius_arcsec}") '
                f"# color={colour} text={{{row['id']} {row[col]:.2f}}}"
            )
    return "\n".join(lines) + "\n"


def top_candidates(table: pd.DataFrame, top: int) -> list[tuple[str, np.ndarray]]:
    """The ``top`` most probable members of the high-z and brown-dwarf lists."""
    picks = []
    for name in ("highz", "brown_dwarf"):
        rows = members(table, name)
        col = list_score(table, name)
        order = rows[np.argsort(-table.loc[rows, col].to_numpy(), kind="stable")]
        picks.append((name, order[:top]))
    return [(n, idx) for n, idx in picks if len(idx)] if top else []


def cutout_strip(cutout: np.ndarray, pixels: int = 48) -> str:
    """The cutout's bands side by side as one PNG (data URI), every band on one asinh
    scale (softened at the noise level, topped at the brightest pixel) so that a dropout
    looks dark: the colours stay comparable by eye."""
    import matplotlib.image

    finite = cutout[np.isfinite(cutout)]
    if finite.size:
        sigma = 1.4826 * np.median(np.abs(finite - np.median(finite)))
        sigma = sigma if sigma > 0 else max(float(np.std(finite)), 1e-30)
        peak = max(float(np.percentile(finite, 99.9)), 10 * sigma)
    else:
        sigma, peak = 1.0, 10.0
    img = np.arcsinh(np.nan_to_num(cutout, nan=0.0) / sigma) / np.arcsinh(peak / sigma)
    step = max(1, img.shape[1] // pixels)
    img = img[:, ::step, ::step]
    gap = np.full((img.shape[1], 2), 1.0)
    strip = np.concatenate([np.concatenate([b, gap], axis=1) for b in img], axis=1)[:, :-2]
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, np.clip(strip, -0.3, 1.0), cmap="gray", vmin=-0.3, vmax=1.0)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


HEADERS = {
    "lowz": "low-z",
    "highz": "high-z",
    "brown_dwarf": "brown dwarf",
    "flag_edge": "at an edge",
    "flag_missing_band": "missing a band",
    "flag_outside_domain": "outside the training domain",
}


def selection_lines(statement: dict[str, Any] | None) -> list[str]:
    """What the lists are and how pure they are expected to be, in sentences (the
    terminal and the HTML page say the same)."""
    if not statement:
        return []
    names = {"highz": "high-z (z ≥ 4)", "brown_dwarf": "brown-dwarf"}
    priors = statement["priors"]
    how = statement["priors_from"]
    lines = [
        f"field priors ({how}): " + ", ".join(f"{c} {100 * p:.2f} %" for c, p in priors.items())
    ]
    for name, entry in statement["lists"].items():
        text = f"{names.get(name, name)} list: {entry['n_selected']} sources, {entry['rule']}"
        if entry["expected_purity"] is not None:
            text += (
                f" (threshold {entry['threshold']:.3g}): expected purity "
                f"{100 * entry['expected_purity']:.0f} %, completeness "
                f"{100 * entry['expected_completeness']:.0f} %"
            )
        lines.append(text)
    source = statement.get("rates_from")
    lines.append(
        f"expected rates measured on {source}: a simulation; they hold on a real field only "
        "as far as the simulation is like it"
        if source
        else "no purity can be stated: the model was trained on data without a field test"
    )
    return lines


def selection_html(statement: dict[str, Any] | None) -> list[str]:
    lines = selection_lines(statement)
    if not lines:
        return []
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return [f"<h2>Candidate lists (selected_highz, selected_brown_dwarf)</h2><ul>{items}</ul>"]


def candidates_html(
    table: pd.DataFrame,
    model: TrainedModel,
    picks: list[tuple[str, np.ndarray]],
    cutouts: dict[int, np.ndarray] | None,
    statement: dict[str, Any] | None = None,
) -> str:
    title = {"highz": "High-z list (z ≥ 4)", "brown_dwarf": "Brown-dwarf list"}
    counts = table["predicted"].value_counts()
    flags = [c for c in table.columns if c.startswith("flag_")]
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>hizkit candidates: {esc(model.label)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:right}th{background:#f4f4f4}img{image-rendering:pixelated;height:56px}"
        ".flag{color:#b00}</style></head><body>",
        f"<h1>hizkit predict: {esc(model.label)}</h1>",
        f"<p>{len(table)} sources classified by <code>{esc(model.label)}</code>: "
        f"{esc(model.manifest.get('description', ''))}. Bands in the cutouts, left to "
        f"right: {esc(', '.join(model.bands))}, all on one asinh scale.</p>",
        "<table><tr>"
        + "".join(f"<th>{esc(HEADERS.get(c, c))}</th>" for c in (*CLASSES, *flags))
        + "</tr><tr>"
        + "".join(f"<td>{int(counts.get(c, 0))}</td>" for c in CLASSES)
        + "".join(f"<td>{int(table[f].sum())}</td>" for f in flags)
        + "</tr></table>",
        *selection_html(statement),
    ]
    zcol = "z_phot" in table.columns
    for name, index in picks:
        parts.append(f"<h2>{esc(title[name])}: the {len(index)} most probable</h2>")
        head = [
            "#",
            "id",
            "RA",
            "Dec",
            f"P({HEADERS[name]})",
            *(["z_phot"] if zcol else []),
            "flags",
        ]
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "<th></th></tr>")
        for rank, i in enumerate(index, 1):
            row = table.loc[i]
            raised = [f.removeprefix("flag_") for f in flags if bool(row[f])]
            image = ""
            if cutouts is not None and int(i) in cutouts:
                uri = cutout_strip(cutouts[int(i)])
                image = f"<img alt='cutouts of {esc(str(row['id']))}' src='{uri}'>"
            cells = [
                str(rank),
                esc(str(row["id"])),
                f"{row['ra']:.6f}",
                f"{row['dec']:.6f}",
                f"{row[list_score(table, name)]:.3f}",
                *([f"{row['z_phot']:.2f}"] if zcol else []),
                f"<span class='flag'>{esc(', '.join(raised))}</span>",
            ]
            parts.append(
                "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{image}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
