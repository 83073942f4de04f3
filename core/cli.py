"""The ``hizkit`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from hizkit import __version__, progress, report
from hizkit.ablate import run_ablation, write_ablation
from hizkit.atomic import check_writable, refuse_existing
from hizkit.bench import run_benchmark
from hizkit.config import Settings, add_flags, names, read_toml
from hizkit.contracts import read_json
from hizkit.cuts import detection_snr
from hizkit.dataset import CLASSES
from hizkit.errors import HizkitError
from hizkit.figures import preprocessing_figure
from hizkit.model import load_model, save_models
from hizkit.predict import field_source, predict_field, selection_lines
from hizkit.registry import get_registry
from hizkit.training import models_from_benchmark, train_models

console = Console()

DESCRIPTION = """\
hizkit compares classifiers that sort JWST NIRCam sources into low-z galaxies (z < 4),
high-z galaxies (z >= 4) and brown dwarfs. Every data source, preprocessor, classifier and
evaluator is a plugin; `hizkit plugins` lists them."""

DATA_HELP = "NAME[:LOCATION]; default: mock (the simulated survey); [data] source, location"
BENCH_EPILOG = """\
examples:
  hizkit bench --classifiers cnn,rf                 # the simulated survey, one run
  hizkit bench --classifiers colour,xgb --runs 10   # mean and std over 10 seeds
  hizkit bench --config my.toml --out runs/poster    # settings from a TOML file
"""


def _settings(args: argparse.Namespace) -> Settings:
    """The command's settings: its configuration file (or preset) under its flags, every
    value and plugin name checked before any data is loaded, so a typo costs nothing."""
    doc = read_toml(args.config) if getattr(args, "config", None) else {}
    return Settings.load(doc, vars(args), args.command)


def _new_output(settings: Settings) -> Path:
    """The output directory, checked free and writable before any work."""
    out = settings.output()
    refuse_existing(out)
    check_writable(out)
    return out


#: what the running command has finished writing (a Ctrl-C after it says so)
WRITTEN: list[Path] = []


def cmd_bench(args: argparse.Namespace) -> int:
    settings = _settings(args)
    out = _new_output(settings)
    registry = get_registry()
    with progress.live():
        dataset = settings.dataset(registry)
    result = run_benchmark(dataset, settings.config, registry, scheduler=settings.bench.scheduler)
    models = models_from_benchmark(result, registry) if args.save_models else None
    path = report.write_run(result, out, models=models, existing="sibling")
    WRITTEN.append(path)
    console.print(report.results_table(result))
    field = report.field_table(result)
    if field is not None:
        console.print(field)
    console.print(f"report: [bold]{path / 'report.html'}[/]  results: {path / 'results.json'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    settings = _settings(args)
    out = _new_output(settings)
    registry = get_registry()
    valid = settings.train.valid_fraction
    with progress.live():
        dataset = settings.dataset(registry)
        models = train_models(dataset, settings.config, registry, valid_fraction=valid)
    path = save_models(models, out, existing="sibling")
    WRITTEN.append(path)
    table = Table(
        title=f"trained models (validation part, {valid:.0%}; field: the field test, "
        "high-z list at the sky's mix)"
    )
    columns = {
        "acc %": "accuracy",
        "TPR low-z %": "tpr_lowz",
        "TPR high-z %": "tpr_highz",
        "TPR BD %": "tpr_brown_dwarf",
        "field purity %": "field_purity_highz",
        "field compl. %": "field_completeness_highz",
    }
    table.add_column("model")
    for col in columns:
        table.add_column(col, justify="right")
    table.add_column("directory", overflow="fold")
    for label, model in models.items():
        m = model.manifest["metrics"]
        pct = [
            "-" if m.get(k) is None or not np.isfinite(m[k]) else f"{100 * m[k]:.1f}"
            for k in columns.values()
        ]
        table.add_row(label, *pct, str(path / label))
    console.print(table)
    first = next(iter(models))
    console.print(
        f"apply one with: hizkit predict --model {path / first} --data jades:DIR --out candidates"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.data_given:
        raise HizkitError("say which field to classify: --data NAME[:LOCATION], e.g. jades:DIR")
    out = Path(args.out)
    if not args.resume:
        refuse_existing(out)
        check_writable(out)
    registry = get_registry()
    model = load_model(args.model, registry)
    data = settings.data
    threshold = settings.predict.threshold
    if args.min_purity is not None and args.threshold is None:
        threshold = None  # a --min-purity flag overrides a file's threshold
    source = field_source(model, data.source, data.params, registry)
    with progress.live():
        table = predict_field(
            model,
            source,
            data.location,
            out,
            chunk_size=settings.predict.chunk_size,
            top=settings.predict.top,
            resume=args.resume,
            data_name=data.text,
            scheduler=settings.predict.scheduler,
            min_purity=settings.predict.min_purity,
            threshold=threshold,
            priors=settings.predict.priors,
        )
    counts = table["predicted"].value_counts()
    summary = Table(
        title=f"{len(table)} sources classified by {model.label}",
        caption="most probable: at the training prior; lists: selected_* (below)",
    )
    for col in ("most probable low-z / high-z / BD", "high-z list", "BD list", "edge",
                "missing band", "outside domain"):  # fmt: skip
        summary.add_column(col, justify="right")
    summary.add_row(
        " / ".join(str(int(counts.get(c, 0))) for c in CLASSES),
        *(str(int(table[f"selected_{n}"].sum())) for n in ("highz", "brown_dwarf")),
        *(
            str(int(table[f].sum()))
            for f in ("flag_edge", "flag_missing_band", "flag_outside_domain")
        ),
    )
    console.print(summary)
    for line in selection_lines(read_json(out / "selection.json")):
        console.print(f"  {line}", highlight=False)
    console.print(
        f"candidates: [bold]{out / 'candidates.html'}[/]  table: {out / 'candidates.fits'} "
        f"(.csv)  regions: {out / 'candidates.reg'}"
    )
    return 0


#: file types `hizkit show` can write (matplotlib's raster and vector formats)
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def cmd_show(args: argparse.Namespace) -> int:
    """Poster Figure 2: cutouts in every band before and after preprocessing."""
    settings = _settings(args)
    out = settings.output()
    if out.suffix.lower() not in FIGURE_SUFFIXES:
        raise HizkitError(
            f"--out {out}: a figure file must end in {', '.join(FIGURE_SUFFIXES)}, "
            f"not {out.suffix or '(no suffix)'!r}"
        )
    refuse_existing(out)
    check_writable(out)
    wanted = None
    if args.ids is not None:
        try:
            wanted = [int(i) for i in names(args.ids, "--ids")]
        except ValueError:
            raise HizkitError(
                f"--ids takes whole-number source ids (ID,ID), got {args.ids!r}"
            ) from None
    registry = get_registry()
    steps = [
        registry.create("preprocessor", n, **settings.preprocessor_params.get(n, {}))
        for n in names(args.steps, "--steps")
    ]
    with progress.live():
        dataset = settings.dataset(registry)
    cat = dataset.catalog
    if wanted is not None:
        missing = sorted(set(wanted) - set(cat["id"]))
        if missing:
            raise HizkitError(f"no source with id {missing} in the dataset")
        index = [int(np.flatnonzero(cat["id"].to_numpy() == i)[0]) for i in wanted]
    else:  # the brightest low-z and high-z sources, as the poster shows
        order = np.argsort(-_detection_snr(cat), kind="stable")
        labels = cat["label"] if "label" in cat else pd.Series("", index=cat.index)
        index = [
            int(next(i for i in order if labels.iloc[i] == c))
            for c in ("lowz", "highz")
            if (labels == c).any()
        ]
    if not index:
        raise HizkitError("no labelled low-z or high-z source to show; name some with --ids")
    part = dataset.subset(index)
    after = part
    for step in steps:
        after = step.fit(after).transform(after)
    path = preprocessing_figure(part, after, out, [s.name for s in steps])
    WRITTEN.append(path)
    console.print(f"wrote {path}")
    return 0


def _detection_snr(catalog: pd.DataFrame) -> np.ndarray:
    """Detection-stack S/N from any source's catalog (its photometry columns); zeros,
    i.e. catalog order, for a catalog without the detection bands' photometry."""
    try:
        snr = detection_snr(catalog)
    except (HizkitError, KeyError):
        return np.zeros(len(catalog))
    return np.nan_to_num(snr, nan=-np.inf)


def cmd_ablate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    out = _new_output(settings)
    registry = get_registry()
    with progress.live():
        dataset = settings.dataset(registry)
        result = run_ablation(dataset, settings.config, registry)
    path = write_ablation(result, out, existing="sibling")
    WRITTEN.append(path)
    for label, needed in result.skipped.items():
        bands = sorted({b for left_out in needed.values() for b in left_out})
        print(
            f"hizkit: warning: {label} cannot run {', '.join(needed)}: it needs "
            f"{', '.join(bands)}, which those variants leave out; those cells are blank",
            file=sys.stderr,
        )
    table = Table(title="band ablation: accuracy drop (percentage points)")
    table.add_column("variant")
    labels = list(result.table["classifier"].unique())
    for label in labels:
        table.add_column(label, justify="right")
    for variant, rows in result.table.groupby("variant", sort=False):
        cells = []
        for label in labels:
            r = rows[rows["classifier"] == label].iloc[0]
            if not np.isfinite(r["accuracy"]):
                cells.append("-")
                continue
            cells.append(f"{100 * r['accuracy']:.1f} ({100 * r['drop']:+.1f})")
        table.add_row(variant, *cells)
    console.print(table)
    console.print(f"ablation: [bold]{path / 'ablation.png'}[/]  table: {path / 'ablation.csv'}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = get_registry()
    infos = registry.all()
    if args.json:
        print(json.dumps([i.as_dict() for i in [*infos, *registry.broken]], indent=2))
        return 0
    table = Table(title="hizkit plugins")
    for col in ("kind", "name", "distribution", "version"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", ratio=1)
    for i in infos:
        table.add_row(i.kind.replace("_", " "), i.name, i.distribution, i.version, i.description)
    for b in registry.broken:
        table.add_row("[red]broken[/]", b.name, b.distribution, b.version, b.error)
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hizkit", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"hizkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    b = sub.add_parser(
        "bench",
        help="compare classifiers on one shared split",
        description="Train and test classifiers on one shared stratified "
        "train/validation/test split (a new one per run, the same for every classifier), then "
        "write a run directory with results.json, predictions, the split, figures and an HTML "
        "report.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--data", metavar="SPEC", help=DATA_HELP)
    add_flags(b, "bench")
    b.add_argument(
        "--config",
        metavar="FILE.toml",
        help="settings, or a shipped preset by name (poster: the poster's protocol); "
        "flags override it",
    )
    b.add_argument(
        "--save-models",
        action="store_true",
        help="also keep each classifier's first-run model (preprocessors + classifier) in "
        "OUT/models/<label>, ready for hizkit predict",
    )
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser(
        "train",
        help="train classifiers once and keep them for hizkit predict",
        description=textwrap.fill(
            "Train each classifier once on the labelled sources (a stratified "
            "train/validation split; the validation part steers training and gives the recorded "
            "metrics) and write one model directory per classifier label: the fitted "
            "preprocessors, the classifier (safe formats only) and a manifest.json (bands, pixel "
            "scale, cutout size, training-data hash, validation metrics, training domain, "
            "versions).",
            width=88,
        ),
        epilog="examples:\n"
        "  hizkit train --classifiers cnn,xgb --out models/       # on the simulated survey\n"
        "  hizkit train --classifiers xgb --data jades:gs/ --config gs.toml --out models/\n"
        "  hizkit predict --model models/xgb --data jades:field/ --out candidates/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--data", metavar="SPEC", help=DATA_HELP)
    add_flags(t, "train")
    t.add_argument("--out", metavar="DIR", help="new directory (default hizkit-models/<time>)")
    t.add_argument("--config", metavar="FILE.toml", help="settings; flags override it")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser(
        "predict",
        help="classify a new field with a trained model: candidate table, regions, HTML",
        description=textwrap.fill(
            "Apply a model written by `hizkit train` to every source of a field. "
            "Sources flow in chunks (cutouts -> preprocessors -> classifier -> rows), so memory "
            "does not grow with the catalog; each finished chunk is saved and an interrupted run "
            "continues with --resume. Writes candidates.fits/.csv (id, ra, dec, p_lowz, p_highz, "
            "p_brown_dwarf, predicted, z_phot when the catalog has one, flags; p_field_* at the "
            "field's priors, score_* and the lists selected_highz and selected_brown_dwarf, drawn "
            "at --min-purity or --threshold), selection.json (priors, thresholds, expected "
            "purity and completeness of each list), candidates.reg (DS9: the lists) and "
            "candidates.html (each list's most probable members with their cutouts). No labels, "
            "photo-z or quality cuts are needed.",
            width=88,
        ),
        epilog="examples:\n"
        "  hizkit predict --model models/cnn --data jades:field/ --out candidates/\n"
        "  hizkit predict --model models/cnn --data jades:field/ --out candidates/ --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("--model", required=True, metavar="DIR", help="a model directory")
    pr.add_argument("--data", metavar="SPEC", help="the field: NAME[:LOCATION], e.g. jades:DIR")
    pr.add_argument("--out", required=True, metavar="DIR", help="new output directory")
    add_flags(pr, "predict")
    pr.add_argument(
        "--resume", action="store_true", help="continue an interrupted run into the same --out"
    )
    pr.add_argument("--config", metavar="FILE.toml", help="[data] and [predict] settings")
    pr.set_defaults(func=cmd_predict)

    sh = sub.add_parser(
        "show",
        help="draw cutouts in all bands before and after preprocessing (PNG)",
        description="The poster's Figure 2: chosen sources in every band, before and after "
        "the preprocessing steps (by default one low-z and one high-z source).",
    )
    sh.add_argument("--out", default="hizkit-show.png", metavar="FILE.png")
    sh.add_argument("--data", metavar="SPEC", help=DATA_HELP)
    sh.add_argument("--ids", metavar="ID,ID", help="source ids (default: one low-z, one high-z)")
    sh.add_argument(
        "--steps",
        default="segment,normalise",
        metavar="A,B",
        help="preprocessors to apply, in order (default segment,normalise)",
    )
    sh.add_argument("--config", metavar="FILE.toml", help="preprocessor and data settings")
    sh.set_defaults(func=cmd_show)

    ab = sub.add_parser(
        "ablate",
        help="retrain without each band in turn (and with F444W alone)",
        description="Band ablation: for every band, retrain and test the classifiers without "
        "it (same seeds, so the same splits), then with F444W alone, and report the accuracy "
        "drop against all bands, as a table and a bar chart.",
    )
    ab.add_argument("--data", metavar="SPEC", help=DATA_HELP)
    add_flags(ab, "ablate")
    ab.add_argument("--out", metavar="DIR", help="new directory (default hizkit-ablations/<time>)")
    ab.add_argument("--config", metavar="FILE.toml")
    ab.set_defaults(func=cmd_ablate)

    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)

    get_registry().add_commands(sub)  # e.g. `hizkit simulate`, from the mock plugin
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except HizkitError as exc:  # a plugin's command clashes with another's
        print(f"hizkit: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    WRITTEN.clear()
    if not args.quiet and sys.stderr.isatty():
        progress.enable()
    try:
        return args.func(args)
    except HizkitError as exc:
        print(f"hizkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "predict":
            print(
                "hizkit: interrupted; finished chunks are kept: rerun with --resume",
                file=sys.stderr,
            )
        else:
            done = f"{WRITTEN[-1]} was written completely" if WRITTEN else "nothing was written"
            print(f"hizkit: interrupted; {done}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
