"""Writing a benchmark's run directory and printing its results table.

A run directory holds:

- ``results.json``: see :func:`results_document` for the schema;
- ``predictions.csv``: one row per test source per run per classifier;
- ``split.csv``: the shared split of every run (``run, seed, id, part``);
- ``summary.md`` and ``report.html`` (figures embedded), and ``figures/*.png``;
- ``models/<label>/`` with ``hizkit bench --save-models``: each classifier's first-run
  model, as ``hizkit train`` writes it.

The directory is built under a temporary name and renamed into place at the end, so a
reader never sees half a run, and an existing directory is never overwritten.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from hizkit import __version__
from hizkit.atomic import jsonable, refuse_existing, write_directory
from hizkit.bench import BenchResult
from hizkit.cuts import describe as cuts_line
from hizkit.dataset import CLASSES
from hizkit.figures import confusion_figure, field_figure

#: the headline metrics of the terminal table and summary.md (computed by the harness for
#: every classifier, :mod:`hizkit.metrics`), with their short headers
SHORT = {
    "accuracy": "acc %",
    "balanced_accuracy": "bal. acc %",
    "tpr_lowz": "TPR low-z %",
    "tpr_highz": "TPR high-z %",
    "tpr_brown_dwarf": "TPR BD %",
    "fit_seconds": "fit s",
}
HEADLINE = list(SHORT)


def default_run_dir(base: str | Path = "hizkit-runs") -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(base) / stamp
    n = 1
    while path.exists():
        n += 1
        path = Path(base) / f"{stamp}-{n}"
    return path


def check_new_dir(path: Path) -> None:
    """Refuse an output directory that exists (before any work is done)."""
    refuse_existing(path)


def _ms(pair: tuple[float, float]) -> dict[str, float]:
    return {"mean": pair[0], "std": pair[1]}


def results_document(result: BenchResult) -> dict[str, Any]:
    """The ``results.json`` document.

    Schema (every ``{mean, std}`` is over runs; std is 0 for a single run)::

        hizkit_version, created, classes, runs, seeds, data: {source meta, n_sources, counts}
        classifiers: {LABEL: {
            plugin, params, preprocessors,
            tpr: {CLASS: {mean, std}}, tnr: {CLASS: {mean, std}},
            accuracy, fit_seconds, predict_seconds: {mean, std},
            metrics: {NAME: {mean, std, values: [per run]}},
            runs: [{run, seed, confusion, metrics: {...}, details: {EVALUATOR: {...}}}],
            field: {runs: [FIELD per run]}}}       # only when the data has a field test

    ``tpr``, ``tnr``... as below. ``FIELD`` (:func:`hizkit.field.evaluate`) is::

        n_sources, weight (sources on the sky), temperature, min_purity,
        priors: {train, estimated (EM on the field's own outputs), true}: [lowz, highz, bd]
        lists: {highz | brown_dwarf: {
            all | snr_5_10 | snr_10: LIST + ranked: {purity_at_completeness_0.5, _0.8},
            at_min_purity, at_min_purity_em: {threshold, stated_purity,
                stated_completeness, priors, achieved: LIST},
            curve: {purity, completeness, threshold}: [..],
            by_snr | by_magnitude | by_photoz: [{lo, hi, n_selected, weight_selected,
                                                 purity, purity_catastrophic}],
            by_true_z: [{lo, hi, n_true, weight_true, completeness}],
            ece: {raw, calibrated}}}

    ``LIST`` is :func:`hizkit.purity.list_metrics`' dict (purity, completeness and
    purity against catastrophic interlopers, each ``{value, low, high, n, n_eff}`` with a
    68 % Wilson interval at Kish's effective size; interlopers by class and kind). The
    operating point is the most probable class at the field's true priors;
    ``at_min_purity`` picks its threshold on one half of the field at the other half's
    true priors (``_em``: at the priors EM estimates from that half's outputs, as
    ``hizkit predict`` does) and is measured on the other half. The
    scalars of run ``i`` are also under ``metrics`` as ``field_*``.

    ``tpr``, ``tnr``, ``accuracy`` and ``confusion`` (rows true, columns predicted, in the
    order of ``classes``) are the core's (:mod:`hizkit.metrics`), present whatever
    evaluators ran; evaluators' metrics (e.g. ``auc_highz``) are under ``metrics``.
    """
    summary = result.summary()
    labels = result.dataset.catalog.get("label")
    counts = labels.value_counts().to_dict() if labels is not None else {}
    doc: dict[str, Any] = {
        "hizkit_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "classes": list(CLASSES),
        "runs": result.config.runs,
        "seeds": [s.seed for s in result.splits],
        "data": {**result.dataset.meta, "n_sources": len(result.dataset), "counts": counts},
        "classifiers": {},
    }
    for spec in result.config.classifiers:
        stats = summary[spec.label]
        runs = result.by_label()[spec.label]
        entry: dict[str, Any] = {
            "plugin": spec.plugin,
            "params": runs[0].classifier.get_params() if runs else spec.params,
            "preprocessors": list(result.preprocessors[spec.label]),
        }
        for key in ("tpr", "tnr"):
            entry[key] = {c: _ms(stats.get(f"{key}_{c}", (math.nan, math.nan))) for c in CLASSES}
        for key in ("accuracy", "fit_seconds", "predict_seconds"):
            entry[key] = _ms(stats.get(key, (math.nan, math.nan)))
        entry["metrics"] = {
            name: {**_ms(ms), "values": [r.metrics.get(name) for r in runs]}
            for name, ms in stats.items()
        }
        entry["runs"] = [
            {
                "run": r.run,
                "seed": r.seed,
                "confusion": r.headline.details["confusion"],
                "metrics": r.metrics,
                "details": {n: e.details for n, e in r.evaluations.items()},
            }
            for r in runs
        ]
        if any(r.field is not None for r in runs):
            entry["field"] = {"runs": [r.field for r in runs]}
        doc["classifiers"][spec.label] = entry
    return jsonable(doc)


def predictions_frame(result: BenchResult) -> pd.DataFrame:
    frames = []
    cat = result.dataset.catalog
    for r in result.runs:
        test = cat.iloc[result.splits[r.run].test]
        frame = pd.DataFrame(
            {
                "run": r.run,
                "classifier": r.label,
                "id": test["id"].to_numpy(),
                "true": test["label"].to_numpy(),
                "z": test["z"].to_numpy() if "z" in test else np.nan,
            }
        )
        for i, c in enumerate(CLASSES):
            frame[f"p_{c}"] = r.proba[:, i]
        frame["predicted"] = np.asarray(CLASSES)[r.proba.argmax(axis=1)]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def split_frame(result: BenchResult) -> pd.DataFrame:
    ids = result.dataset.catalog["id"].to_numpy()
    rows = [
        pd.DataFrame({"run": i, "seed": s.seed, "id": ids[idx], "part": part})
        for i, s in enumerate(result.splits)
        for part, idx in s.parts().items()
    ]
    return pd.concat(rows, ignore_index=True)


def _fmt(ms: tuple[float, float], pct: bool) -> str:
    mean, std = ms
    if not math.isfinite(mean):
        return "-"
    if pct:
        return f"{100 * mean:.1f} ± {100 * std:.1f}" if std else f"{100 * mean:.1f}"
    return f"{mean:.2f} ± {std:.2f}" if std else f"{mean:.2f}"


def results_table(result: BenchResult) -> Table:
    """The terminal table: headline metrics, percentages as mean ± std over runs."""
    summary = result.summary()
    runs = result.config.runs
    table = Table(title=f"hizkit bench: {len(result.dataset)} sources, {runs} run(s)")
    table.add_column("classifier", style="bold", no_wrap=True)
    for name in HEADLINE:
        table.add_column(SHORT[name], justify="right")
    for label, stats in summary.items():
        table.add_row(
            label, *[_fmt(stats.get(n, (math.nan, 0)), "seconds" not in n) for n in HEADLINE]
        )
    return table


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [_md_row(head), "|---" * len(head) + "|", *(_md_row(r) for r in rows)]


def summary_markdown(result: BenchResult, figures: list[Path]) -> str:
    """summary.md: the headline table, the classifiers compared, every metric, figures."""
    summary = result.summary()
    lines = [
        "# hizkit benchmark",
        "",
        f"{len(result.dataset)} sources from `{result.dataset.meta.get('source', '?')}`, "
        f"{result.config.runs} run(s), seeds {[s.seed for s in result.splits]}. "
        "Values are mean ± std over runs; rates in percent.",
        "",
    ]
    cuts = result.dataset.meta.get("cuts")
    if cuts:
        lines += [f"Selection (sources left after each cut): {cuts_line(cuts)}.", ""]
    pct = {n: "seconds" not in n for n in HEADLINE}
    lines += _md_table(
        ["classifier", *(SHORT[n] for n in HEADLINE)],
        [
            [label, *(_fmt(stats.get(n, (math.nan, 0)), pct[n]) for n in HEADLINE)]
            for label, stats in summary.items()
        ],
    )
    lines += ["", "## Classifiers", ""]
    lines += _md_table(
        ["classifier", "plugin", "preprocessors"],
        [
            [s.label, f"`{s.plugin}`", ", ".join(result.preprocessors[s.label]) or "-"]
            for s in result.config.classifiers
        ],
    )
    lines += field_markdown(result)
    labels = list(summary)
    names = sorted({n for stats in summary.values() for n in stats if not n.startswith("field_")})
    lines += ["", "## All metrics", "", "Mean ± std over runs, as recorded (not in percent).", ""]
    lines += _md_table(
        ["metric", *labels],
        [[n, *(_fmt(summary[lb].get(n, (math.nan, 0)), False) for lb in labels)] for n in names],
    )
    if figures:
        lines += ["", "## Figures", ""] + [f"- [{p.name}](figures/{p.name})" for p in figures]
    return "\n".join(lines) + "\n"


def _pct(fraction: dict[str, float] | None) -> str:
    """A weighted fraction as ``value [low, high]`` in percent ("-" when undefined)."""
    if not fraction or fraction.get("value") is None or not math.isfinite(fraction["value"]):
        return "-"
    return (
        f"{100 * fraction['value']:.0f} [{100 * fraction['low']:.0f}, {100 * fraction['high']:.0f}]"
    )


def _num(value: float | None, digits: int = 2, pct: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.0f}" if pct else f"{value:.{digits}f}"


def _pick(pick: dict[str, Any]) -> str:
    """stated / achieved purity / achieved completeness of a list drawn at min purity."""
    return (
        f"{_num(pick['stated_purity'], pct=True)} / "
        f"{_num(pick['achieved']['purity']['value'], pct=True)} / "
        f"{_num(pick['achieved']['completeness']['value'], pct=True)}"
    )


def field_sections(result: BenchResult) -> dict[str, dict[str, Any]]:
    """Each label's field section of its first run (labels without one left out)."""
    return {
        label: runs[0].field
        for label, runs in result.by_label().items()
        if runs and runs[0].field is not None
    }


FIELD_HEAD = [
    "classifier", "selected (on the sky)", "purity %", "completeness %", "purity S/N≥10 %",
    "compl. S/N≥10 %", "catastrophic-only purity S/N≥10 %", "purity S/N 5-10 %",
    "purity at compl. 50 / 80 %", "at min purity: stated / achieved / compl. %", "ECE raw → cal.",
]  # fmt: skip


def field_rows(sections: dict[str, dict[str, Any]], name: str) -> list[list[str]]:
    """One row per classifier for the list ``name`` (high-z or brown dwarfs)."""
    rows = []
    for label, sec in sections.items():
        e = sec["lists"][name]
        a, hi, lo = e["all"], e["snr_10"], e["snr_5_10"]
        ranked = a["ranked"]
        pick = e["at_min_purity"]
        rows.append(
            [
                label,
                f"{a['n_selected']} ({a['weight_selected']:.3g})",
                _pct(a["purity"]),
                _pct(a["completeness"]),
                _pct(hi["purity"]),
                _pct(hi["completeness"]),
                _pct(hi["purity_catastrophic"]),
                _pct(lo["purity"]),
                f"{_num(ranked['purity_at_completeness_0.5'], pct=True)} / "
                f"{_num(ranked['purity_at_completeness_0.8'], pct=True)}",
                _pick(pick),
                f"{_num(e['ece']['raw'], 3)} → {_num(e['ece']['calibrated'], 3)}",
            ]
        )
    return rows


def field_markdown(result: BenchResult) -> list[str]:
    """summary.md's field section: the candidate lists each classifier hands a user on
    a whole field at the sky's mix (nothing when the data has no field test)."""
    sections = field_sections(result)
    if not sections:
        return []
    first = next(iter(sections.values()))
    true = first["priors"]["true"]
    lines = [
        "",
        "## The field test: candidate lists at the sky's mix",
        "",
        f"{first['n_sources']} sources detected in a simulated field "
        f"({first['weight']:.0f} on the sky after the importance weights of its enriched "
        f"rare kinds); true class priors low-z / high-z / brown dwarf "
        f"{' / '.join(f'{100 * p:.2f}' for p in true)} %. Each classifier is calibrated on "
        "its validation part, its probabilities are moved to the field's priors, and a "
        "source joins a list when that class is the most probable. Run 1 "
        f"(seed {result.splits[0].seed}); weighted percentages with 68 % Wilson intervals; "
        "catastrophic interlopers are true z < 3, brown dwarfs and spurious detections "
        "(3 ≤ z < 4 is scatter across the threshold). 'At min purity': the threshold that "
        f"states purity ≥ {100 * first['min_purity']:.0f} % from one half of the field, "
        "measured on the other half.",
        "",
    ]
    for name, title in (("highz", "High-z (z ≥ 4) list"), ("brown_dwarf", "Brown-dwarf list")):
        lines += [f"### {title}", ""]
        lines += _md_table(FIELD_HEAD, field_rows(sections, name))
        lines += [""]
    lines += [
        "Priors the field's own outputs give by EM (as `hizkit predict` estimates "
        "them on a real field), and the list drawn at min purity with them:",
        "",
    ]
    lines += _md_table(
        ["classifier", "EM priors low-z / high-z / BD %", "high-z at min purity: stated / "
         "achieved / compl. %"],
        [
            [
                label,
                " / ".join(f"{100 * p:.1f}" for p in sec["priors"]["estimated"]),
                _pick(sec["lists"]["highz"]["at_min_purity_em"]),
            ]
            for label, sec in sections.items()
        ],
    )  # fmt: skip
    lines += [""]
    kinds: dict[str, dict[str, float]] = {}
    for label, sec in sections.items():
        for kind, v in sec["lists"]["highz"]["snr_10"]["interlopers"]["by_kind"].items():
            kinds.setdefault(kind, {})[label] = v["weight"]
    if kinds:
        labels = list(sections)
        lines += ["Interlopers in the high-z list at S/N ≥ 10, by kind (sources on the sky):", ""]
        lines += _md_table(
            ["kind", *labels],
            [[k, *(f"{kinds[k].get(lb, 0):.0f}" for lb in labels)] for k in sorted(kinds)],
        )
    return lines


def field_table(result: BenchResult) -> Table | None:
    """The terminal's field table (None without a field test): values only, the
    intervals are in summary.md."""
    sections = field_sections(result)
    if not sections:
        return None
    table = Table(title="field test at the sky's mix: the z ≥ 4 and brown-dwarf lists (%)")
    for col in ("classifier", "z≥4 pur.", "compl.", "pur. S/N≥10", "compl. S/N≥10",
                "at min pur.", "BD pur.", "BD compl."):  # fmt: skip
        table.add_column(col, justify="left" if col == "classifier" else "right")

    def value(fraction: dict[str, float]) -> str:
        return _num(fraction["value"], pct=True)

    for label, sec in sections.items():
        h, b = sec["lists"]["highz"], sec["lists"]["brown_dwarf"]
        pick = h["at_min_purity"]
        table.add_row(
            label,
            value(h["all"]["purity"]),
            value(h["all"]["completeness"]),
            value(h["snr_10"]["purity"]),
            value(h["snr_10"]["completeness"]),
            f"{_num(pick['achieved']['purity']['value'], pct=True)}@"
            f"{_num(pick['achieved']['completeness']['value'], pct=True)}",
            value(b["all"]["purity"]),
            value(b["all"]["completeness"]),
        )
    table.caption = (
        f"at min pur.: the purity@completeness achieved by the list drawn for "
        f"{100 * next(iter(sections.values()))['min_purity']:.0f} % purity (summary.md)"
    )
    return table


#: a table cell holding a number, a mean ± std, or "-" (no value)
NUMBER = re.compile(r"^-$|^-?[\d.]+(e[+-]?\d+)?( ± [\d.]+(e[+-]?\d+)?)?$")


def markdown_html(md: str) -> str:
    """The small Markdown that :func:`summary_markdown` writes (headings, paragraphs,
    pipe tables, bullet lists, `code`, [links](...)) as HTML: the headline table is a real
    table in the report, not preformatted text."""

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"<a href='\2'>\1</a>", text)

    out: list[str] = []
    rows: list[list[str]] = []
    items: list[str] = []

    def flush() -> None:
        if rows:
            head, body = rows[0], [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]
            # a column of numbers is right-aligned, one of words left-aligned
            numeric = [
                all(NUMBER.match(r[j]) for r in body if j < len(r)) for j in range(len(head))
            ]
            cls = [" class='num'" if n else "" for n in numeric]
            out.append("<table><thead><tr>")
            out.append("".join(f"<th{k}>{inline(c)}</th>" for k, c in zip(cls, head)))
            out.append("</tr></thead><tbody>")
            for r in body:
                cells = "".join(f"<td{k}>{inline(c)}</td>" for k, c in zip(cls, r))
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table>")
            rows.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


#: the report's style: one readable column on a laptop screen, tables that scroll
#: sideways rather than overflow, figures scaled to the column
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
  max-width:1100px;margin:0 auto;padding:1.5em 1.2em 4em}
h1{font-size:1.7em;margin:.2em 0 .4em}h2{font-size:1.25em;margin:1.8em 0 .5em;
  border-bottom:1px solid #e3e3e3;padding-bottom:.2em}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.4em 0}
th,td{padding:4px 12px;border-bottom:1px solid #e3e3e3;text-align:left;white-space:nowrap}
th.num,td.num{text-align:right}
th{background:#f4f6f8;font-weight:600}tbody tr:nth-child(even){background:#fafafa}
figure{margin:1.2em 0}figcaption{font-weight:600;margin-bottom:.3em}
figure img{display:block;max-width:100%;height:auto;border:1px solid #e3e3e3}
"""


def report_html(markdown: str, figures: list[Path]) -> str:
    """A self-contained web page: the summary (``markdown``, as :func:`summary_markdown`
    writes it) rendered as HTML, its figure list replaced by the figures themselves,
    embedded as PNG and each linking to its file."""
    text, _, _ = markdown.partition("\n## Figures\n")
    body = markdown_html(text).replace("<table>", "<div class='scroll'><table>")
    body = body.replace("</table>", "</table></div>")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>hizkit benchmark</title><style>{STYLE}</style></head><body>",
        body,
    ]
    if figures:
        parts.append("<h2>Figures</h2>")
    for fig in figures:
        data = base64.b64encode(fig.read_bytes()).decode("ascii")
        name = html.escape(fig.name)
        parts.append(
            f"<figure><figcaption>{html.escape(fig.stem.replace('_', ' '))}</figcaption>"
            f"<a href='figures/{name}'><img alt='{html.escape(fig.stem)}' "
            f"src='data:image/png;base64,{data}'></a></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_run(
    result: BenchResult,
    out: Path,
    models: dict[str, Any] | None = None,
    existing: str = "refuse",
) -> Path:
    """Write the run directory atomically; returns its path. ``models`` (label ->
    :class:`hizkit.model.TrainedModel`) are kept in ``models/<label>/``. An existing
    ``out`` is refused, unless ``existing="sibling"`` (the CLI, which checked ``out``
    before the run): then the run takes the next free sibling name, announced.

    A failure to write (a full disk, permissions changed during the run, a figure that
    fails) never loses the finished run: it is written again into a recovery directory
    (beside ``out``, else the user cache, else the system temporary directory) and the
    error says where."""
    return write_directory(out, lambda d: _write_into(d, result, models), "run", existing)


def _write_into(tmp: Path, result: BenchResult, models: dict[str, Any] | None) -> None:
    """The run's files, the essential ones first (results, predictions, split)."""
    (tmp / "results.json").write_text(json.dumps(results_document(result), indent=2))
    predictions_frame(result).to_csv(tmp / "predictions.csv", index=False)
    split_frame(result).to_csv(tmp / "split.csv", index=False)
    for label, model in (models or {}).items():
        (tmp / "models" / label).mkdir(parents=True)
        model.write_into(tmp / "models" / label)
    fig_dir = tmp / "figures"
    fig_dir.mkdir()
    confusions = {
        label: [r.headline.details["confusion"] for r in runs]
        for label, runs in result.by_label().items()
    }
    figures = [confusion_figure(confusions, fig_dir / "confusion_matrices.png")]
    sections = field_sections(result)
    if sections:
        figures.append(field_figure(sections, fig_dir / "field_test.png"))
    for name, evaluator in result.evaluators.items():
        figures += evaluator.plot(result.plot_view(name), fig_dir)
    md = summary_markdown(result, figures)
    (tmp / "summary.md").write_text(md)
    (tmp / "report.html").write_text(report_html(md, figures))
