"""The ``hizkit`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hizkit import __version__, progress
from hizkit.atomic import refuse_existing
from hizkit.errors import HizkitError

console = Console()

DESCRIPTION = """\
hizkit compares classifiers that sort JWST NIRCam sources into low-z galaxies (z < 4),
high-z galaxies (z >= 4) and brown dwarfs. Every data source, preprocessor, classifier and
evaluator is a plugin; `hizkit plugins` lists them."""

BENCH_EPILOG = """\
examples:
  hizkit bench --classifiers cnn,rf                 # the simulated survey, one run
  hizkit bench --classifiers colour,xgb --runs 10   # mean and std over 10 seeds
  hizkit bench --config my.toml --out runs/poster    # settings from a TOML file
"""


def _load_data(spec):
    from hizkit.registry import get_registry

    source = get_registry().create("data_source", spec.source, **spec.params)
    return source.load(spec.location)


def _setup(args: argparse.Namespace, evaluators: str | None, default_base: str):
    """Config file + flags, every plugin name checked, the output directory checked free:
    all before any data is loaded, so a typo costs nothing."""
    from hizkit import config as cfg
    from hizkit import report
    from hizkit.registry import get_registry

    doc = cfg.read_toml(args.config) if args.config else {}
    data_spec, config = cfg.build(
        doc,
        data=args.data,
        classifiers=args.classifiers,
        evaluators=evaluators,
        runs=args.runs,
        seed=args.seed,
    )
    registry = get_registry()
    registry.info("data_source", data_spec.source)
    for spec in config.classifiers:
        registry.info("classifier", spec.plugin)
    for name in config.evaluators or []:
        registry.info("evaluator", name)
    out = Path(args.out) if args.out else report.default_run_dir(default_base)
    report.check_new_dir(out)
    return data_spec, config, registry, out


def cmd_bench(args: argparse.Namespace) -> int:
    from hizkit import report
    from hizkit.bench import run_benchmark

    data_spec, config, registry, out = _setup(args, args.evaluators, "hizkit-runs")
    with progress.live():
        progress.log(f"loading data: {data_spec.source}")
        dataset = _load_data(data_spec)
    result = run_benchmark(dataset, config, registry)
    path = report.write_run(result, out)
    console.print(report.results_table(result))
    console.print(f"report: [bold]{path / 'report.html'}[/]  results: {path / 'results.json'}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from hizkit.registry import get_registry

    params = {"seed": args.seed, "n_unlabelled": 0}  # the files hold the labelled set
    for key in ("n_lowz", "n_highz", "n_brown_dwarfs", "n_unlabelled"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    source = get_registry().create("data_source", "mock", **params)
    with progress.live():
        paths = source.simulate_to(Path(args.out), plot=args.plot)
    for p in paths:
        console.print(f"wrote {p}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Poster Figure 2: cutouts in every band before and after preprocessing."""
    from hizkit import config as cfg
    from hizkit.figures import preprocessing_figure
    from hizkit.registry import get_registry

    doc = cfg.read_toml(args.config) if args.config else {}
    data_spec, config = cfg.build(doc, data=args.data, classifiers="prior")
    out = Path(args.out)
    refuse_existing(out)
    registry = get_registry()
    steps = [
        registry.create("preprocessor", n, **config.preprocessor_params.get(n, {}))
        for n in args.steps.split(",")
    ]
    with progress.live():
        dataset = _load_data(data_spec)
    cat = dataset.catalog
    if args.ids:
        wanted = [int(i) for i in args.ids.split(",")]
        missing = sorted(set(wanted) - set(cat["id"]))
        if missing:
            raise HizkitError(f"no source with id {missing} in the dataset")
        index = [int(np.flatnonzero(cat["id"].to_numpy() == i)[0]) for i in wanted]
    else:  # the brightest low-z and high-z sources, as the poster shows
        order = np.argsort(-cat.get("snr_det", cat.index.to_series()).to_numpy())
        index = [
            int(next(i for i in order if cat["label"].iloc[i] == c))
            for c in ("lowz", "highz")
            if (cat["label"] == c).any()
        ]
    part = dataset.subset(index)
    after = part
    for step in steps:
        after = step.fit(after).transform(after)
    preprocessing_figure(part, after, out, [s.name for s in steps])
    console.print(f"wrote {out}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from hizkit.ablate import run_ablation, write_ablation

    data_spec, config, registry, out = _setup(args, "classification", "hizkit-ablations")
    with progress.live():
        dataset = _load_data(data_spec)
        result = run_ablation(dataset, config, registry)
    path = write_ablation(result, out)
    table = Table(title="band ablation: accuracy drop (percentage points)")
    table.add_column("variant")
    labels = list(result.table["classifier"].unique())
    for label in labels:
        table.add_column(label, justify="right")
    for variant, rows in result.table.groupby("variant", sort=False):
        cells = []
        for label in labels:
            r = rows[rows["classifier"] == label].iloc[0]
            cells.append(f"{100 * r['accuracy']:.1f} ({100 * r['drop']:+.1f})")
        table.add_row(variant, *cells)
    console.print(table)
    console.print(f"ablation: [bold]{path / 'ablation.png'}[/]  table: {path / 'ablation.csv'}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from hizkit.registry import get_registry

    infos = get_registry().all()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    table = Table(title="hizkit plugins")
    for col in ("kind", "name", "distribution", "version"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", ratio=1)
    for i in infos:
        table.add_row(i.kind.replace("_", " "), i.name, i.distribution, i.version, i.description)
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
    b.add_argument("--data", metavar="SPEC", help="NAME[:LOCATION]; default: mock (simulated)")
    b.add_argument("--classifiers", metavar="A,B", help="comma-separated labels (default cnn,rf)")
    b.add_argument("--evaluators", metavar="A,B", help="default: every registered evaluator")
    b.add_argument("--runs", type=int, help="repeat with seeds S, S+1, ... (default 1)")
    b.add_argument("--seed", type=int, help="first seed (default 0)")
    b.add_argument("--out", metavar="DIR", help="new run directory (default hizkit-runs/<time>)")
    b.add_argument("--config", metavar="FILE.toml", help="settings; flags override it")
    b.set_defaults(func=cmd_bench)

    s = sub.add_parser(
        "simulate",
        help="write the simulated survey in the JADES v2.0 file layout",
        description="Simulate the default survey (the `mock` data source) and write it as "
        "JADES v2.0 files: per-filter mosaics (SCI and ERR extensions, MJy/sr, TAN WCS at "
        '0.03"/px) and the multi-extension photometric catalog (FLAG, SIZE, CIRC, KRON, '
        "PHOTOZ), plus a TRUTH extension.",
    )
    s.add_argument("--out", required=True, metavar="DIR", help="new directory to create")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--plot", action="store_true", help="also draw colour-colour diagrams")
    for key in ("n_lowz", "n_highz", "n_brown_dwarfs", "n_unlabelled"):
        s.add_argument("--" + key.replace("_", "-"), type=int, dest=key, metavar="N")
    s.set_defaults(func=cmd_simulate)

    sh = sub.add_parser(
        "show",
        help="draw cutouts in all bands before and after preprocessing (PNG)",
        description="The poster's Figure 2: chosen sources in every band, before and after "
        "the preprocessing steps (by default one low-z and one high-z source).",
    )
    sh.add_argument("--out", default="hizkit-show.png", metavar="FILE.png")
    sh.add_argument("--data", metavar="SPEC", help="NAME[:LOCATION]; default: mock")
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
    ab.add_argument("--classifiers", metavar="A,B", default="cnn")
    ab.add_argument("--data", metavar="SPEC", help="NAME[:LOCATION]; default: mock")
    ab.add_argument("--runs", type=int, help="runs per variant (default 1)")
    ab.add_argument("--seed", type=int)
    ab.add_argument("--out", metavar="DIR", help="new directory (default hizkit-ablations/<time>)")
    ab.add_argument("--config", metavar="FILE.toml")
    ab.set_defaults(func=cmd_ablate)

    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.quiet and sys.stderr.isatty():
        progress.enable()
    try:
        return args.func(args)
    except HizkitError as exc:
        print(f"hizkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hizkit: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
