"""The ``hizkit`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hizkit import __version__, progress
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


def cmd_bench(args: argparse.Namespace) -> int:
    from hizkit import config as cfg
    from hizkit import report
    from hizkit.bench import run_benchmark
    from hizkit.registry import get_registry

    doc = cfg.read_toml(args.config) if args.config else {}
    data_spec, config = cfg.build(
        doc,
        data=args.data,
        classifiers=args.classifiers,
        evaluators=args.evaluators,
        runs=args.runs,
        seed=args.seed,
    )
    registry = get_registry()
    for spec in config.classifiers:  # fail on a bad name before loading anything
        registry.info("classifier", spec.plugin)
    for name in config.evaluators or []:
        registry.info("evaluator", name)
    out = Path(args.out) if args.out else report.default_run_dir()
    report.check_new_dir(out)
    with progress.live():
        progress.log(f"loading data: {data_spec.source}")
        dataset = _load_data(data_spec)
    result = run_benchmark(dataset, config, registry)
    path = report.write_run(result, out)
    console.print(report.results_table(result))
    console.print(f"report: [bold]{path / 'report.html'}[/]  results: {path / 'results.json'}")
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
