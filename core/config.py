"""Reading a benchmark configuration from TOML and command-line flags.

A configuration file looks like::

    [data]
    source = "mock"            # a data source name; `location` is its path, if any
    n_lowz = 300               # any other key is a parameter of the data source

    [bench]
    classifiers = ["cnn", "cnn_weighted", "rf"]
    runs = 3
    seed = 0
    fractions = [0.6, 0.2, 0.2]

    [classifiers.cnn_weighted] # a label; `plugin` says which classifier it is
    plugin = "cnn"
    class_weight = "balanced"
    preprocessors = ["segment", "normalise"]

    [preprocessors.segment]
    fill = "zero"

    [train]                    # hizkit train (classifiers and seed come from [bench])
    valid_fraction = 0.2

    [predict]                  # hizkit predict
    chunk_size = 1024
    top = 25

Command-line flags override the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from hizkit.bench import BenchConfig, ClassifierSpec
from hizkit.errors import HizkitError

SECTIONS = {"data", "bench", "classifiers", "preprocessors", "evaluators", "train", "predict"}
BENCH_KEYS = {"classifiers", "evaluators", "runs", "seed", "fractions", "out"}
TABLE_KEYS = {
    "bench": BENCH_KEYS,
    "train": {"valid_fraction"},
    "predict": {"chunk_size", "top"},
}


@dataclass
class DataSpec:
    source: str = "mock"
    location: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, params: dict[str, Any] | None = None) -> DataSpec:
        """``NAME`` or ``NAME:LOCATION`` (e.g. ``mock``, ``jades:/data/jades``)."""
        name, _, location = text.partition(":")
        if not name:
            raise HizkitError(f"bad --data value {text!r}: expected NAME or NAME:LOCATION")
        return cls(name.strip(), location or None, dict(params or {}))


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise HizkitError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise HizkitError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = set(doc) - SECTIONS
    if unknown:
        raise HizkitError(
            f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(SECTIONS))}"
        )
    for table, keys in TABLE_KEYS.items():
        bad = set(doc.get(table, {})) - keys
        if bad:
            raise HizkitError(
                f"config file {path}: unknown [{table}] key(s) {', '.join(sorted(bad))}; "
                f"known: {', '.join(sorted(keys))}"
            )
    return doc


def _as_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise HizkitError(f"{what} must be a list of names, got {value!r}")
    items = [v for v in items if v]
    if not items:
        raise HizkitError(f"{what} is empty")
    return items


def build(
    doc: dict[str, Any],
    *,
    data: str | None = None,
    classifiers: str | None = None,
    evaluators: str | None = None,
    runs: int | None = None,
    seed: int | None = None,
) -> tuple[DataSpec, BenchConfig]:
    """Merge a parsed config document with command-line overrides."""
    data_doc = dict(doc.get("data", {}))
    source = data_doc.pop("source", "mock")
    location = data_doc.pop("location", None)
    spec = DataSpec.parse(data, data_doc) if data else DataSpec(source, location, data_doc)
    if data and spec.source != source:
        spec.params = {}  # the file's data options belong to another source

    bench = doc.get("bench", {})
    clf_sections: dict[str, dict[str, Any]] = doc.get("classifiers", {})
    labels = _as_list(classifiers or bench.get("classifiers", "cnn,rf"), "classifiers")
    specs = []
    for label in labels:
        section = dict(clf_sections.get(label, {}))
        plugin = section.pop("plugin", label)
        chain = section.pop("preprocessors", None)
        if chain is not None:
            chain = tuple(_as_list(chain, f"[classifiers.{label}] preprocessors")) if chain else ()
        specs.append(ClassifierSpec(label, plugin, section, chain))

    ev = evaluators or bench.get("evaluators")
    fractions = bench.get("fractions", (0.6, 0.2, 0.2))
    try:
        config = BenchConfig(
            classifiers=specs,
            evaluators=_as_list(ev, "evaluators") if ev else None,
            runs=int(runs if runs is not None else bench.get("runs", 1)),
            seed=int(seed if seed is not None else bench.get("seed", 0)),
            fractions=tuple(float(f) for f in fractions),  # type: ignore[arg-type]
            preprocessor_params=doc.get("preprocessors", {}),
            evaluator_params=doc.get("evaluators", {}),
        )
    except (TypeError, ValueError) as exc:
        raise HizkitError(f"bad [bench] value: {exc}") from None
    config.validate()
    return spec, config
