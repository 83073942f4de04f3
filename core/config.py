"""Reading a benchmark configuration from TOML and command-line flags.

A configuration file looks like::

    [data]
    source = "mock"            # a data source name; `location` is its path, if any
    n_lowz = 300               # any other key is a parameter of the data source

    [bench]
    classifiers = ["cnn", "cnn_weighted", "rf"]
    out = "runs/poster"        # the run directory when --out is not given (bench only)
    runs = 3
    seed = 0
    ceiling = true             # add the `photoz` template-fitting row (default: true)
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
    scheduler = "local:2"      # Dask (also under [bench]): local:N or tcp://host:8786

Command-line flags override the file.
"""

from __future__ import annotations

import inspect
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hizkit.bench import BenchConfig, ClassifierSpec
from hizkit.errors import HizkitError

SECTIONS = {"data", "bench", "classifiers", "preprocessors", "evaluators", "train", "predict"}
BENCH_KEYS = {
    "classifiers",
    "evaluators",
    "runs",
    "seed",
    "fractions",
    "out",
    "scheduler",
    "ceiling",
}
#: configuration files shipped with hizkit, read by name (``--config poster``)
PRESETS = Path(__file__).parent / "presets"
#: the classifier that gives every table its template-fitting ceiling row
CEILING = "photoz"
TABLE_KEYS = {
    "bench": BENCH_KEYS,
    "train": {"valid_fraction"},
    "predict": {"chunk_size", "top", "scheduler"},
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


def presets() -> list[str]:
    """Names of the shipped configuration presets."""
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A configuration file, or a shipped preset by name (a file of that name wins)."""
    path = Path(path)
    if not path.exists() and path.name == str(path) and path.name in presets():
        path = PRESETS / f"{path.name}.toml"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HizkitError(
            f"config file {path} does not exist (shipped presets: {', '.join(presets())})"
        ) from None
    except IsADirectoryError:
        raise HizkitError(f"config file {path} is a directory, not a TOML file") from None
    except UnicodeDecodeError as exc:
        raise HizkitError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8"
        ) from None
    except OSError as exc:
        raise HizkitError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise HizkitError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = set(doc) - SECTIONS
    if unknown:
        raise HizkitError(
            f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(SECTIONS))}"
        )
    for name, value in doc.items():
        if not isinstance(value, dict):
            raise HizkitError(
                f"config file {path}: [{name}] must be a table (a line '[{name}]' followed by "
                f"its keys), got {name} = {value!r}"
            )
    for name in ("classifiers", "preprocessors", "evaluators"):
        for key, value in doc.get(name, {}).items():
            if not isinstance(value, dict):
                raise HizkitError(
                    f"config file {path}: [{name}.{key}] must be a table of parameters, "
                    f"got {key} = {value!r}"
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
    ceiling: bool = False,
) -> tuple[DataSpec, BenchConfig]:
    """Merge a parsed config document with command-line overrides. ``ceiling`` (the
    benchmark's) adds the template photo-z row unless ``[bench] ceiling = false``."""
    data_doc = dict(_table(doc, "data"))
    source = _text(data_doc.pop("source", "mock"), "[data] source")
    location = data_doc.pop("location", None)
    if location is not None:
        location = _text(location, "[data] location")
    if data is not None:
        spec = DataSpec.parse(data, data_doc)
    else:
        spec = DataSpec(source, location, data_doc)
    if data is not None and spec.source != source:
        spec.params = {}  # the file's data options belong to another source

    bench = _table(doc, "bench")
    clf_sections: dict[str, dict[str, Any]] = _table(doc, "classifiers")
    given = classifiers if classifiers is not None else bench.get("classifiers", "cnn,rf")
    labels = _as_list(given, "the classifier list (--classifiers or [bench] classifiers)")
    specs = []
    for label in labels:
        section = dict(_table(clf_sections, label, f"classifiers.{label}"))
        plugin = _text(section.pop("plugin", label), f"[classifiers.{label}] plugin")
        chain = section.pop("preprocessors", None)
        if chain is not None:
            chain = tuple(_as_list(chain, f"[classifiers.{label}] preprocessors")) if chain else ()
        specs.append(ClassifierSpec(label, plugin, section, chain))
    wants_ceiling = _flag(bench.get("ceiling", True), "[bench] ceiling")
    if ceiling and wants_ceiling and all(s.plugin != CEILING and s.label != CEILING for s in specs):
        specs.append(ClassifierSpec(CEILING, CEILING, {}, None))

    ev = evaluators if evaluators is not None else bench.get("evaluators")
    config = BenchConfig(
        classifiers=specs,
        evaluators=_as_list(ev, "evaluators") if ev is not None else None,
        runs=_integer(runs if runs is not None else bench.get("runs", 1), "runs", 1),
        seed=_integer(seed if seed is not None else bench.get("seed", 0), "seed", 0),
        fractions=_fractions(bench.get("fractions", (0.6, 0.2, 0.2))),
        preprocessor_params=_table(doc, "preprocessors"),
        evaluator_params=_table(doc, "evaluators"),
    )
    config.validate()
    return spec, config


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise HizkitError(f"{what} must be true or false, got {value!r}")
    return value


def without_unavailable_ceiling(config: BenchConfig, columns: Any) -> BenchConfig:
    """The configuration without the ``photoz`` ceiling row when the catalog has no
    template photo-z (``z_phot``) to give it (a survey without photometric redshifts)."""
    auto = [s for s in config.classifiers if s.label == CEILING and s.plugin == CEILING]
    if not auto or "z_phot" in columns or len(config.classifiers) == 1:
        return config
    return replace(config, classifiers=[s for s in config.classifiers if s not in auto])


def _table(doc: dict[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise HizkitError(f"[{name or key}] must be a table of settings, got {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HizkitError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _integer(value: Any, what: str, minimum: int) -> int:
    """An integer setting: ``2.7`` or ``"2"`` is refused, not truncated or parsed."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise HizkitError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise HizkitError(f"--{what} must be at least {minimum}, got {value}")
    return int(value)


def _fractions(value: Any) -> tuple[float, float, float]:
    """``[bench] fractions``: train, validation and test, summing to 1; the benchmark
    needs a training and a test part (``hizkit train`` makes its own split)."""
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(f, int | float) and not isinstance(f, bool) for f in value)
    )
    if not ok or min(value) < 0 or abs(sum(value) - 1) > 1e-6:
        raise HizkitError(
            f"[bench] fractions must be three non-negative numbers (train, validation, test) "
            f"summing to 1, got {value!r}"
        )
    if value[0] == 0 or value[2] == 0:
        part = "training" if value[0] == 0 else "test"
        raise HizkitError(
            f"[bench] fractions {list(value)} leave no {part} part; the benchmark needs both"
        )
    return (float(value[0]), float(value[1]), float(value[2]))


def bench_out(doc: dict[str, Any]) -> str | None:
    """``[bench] out``: the run directory when ``--out`` is not given."""
    out = _table(doc, "bench").get("out")
    return None if out is None else _text(out, "[bench] out")


def check_param_types(kind: str, cls: type, params: dict[str, Any], where: str) -> None:
    """Refuse, before any work, a parameter whose value has the wrong type for the
    plugin's ``__init__`` annotation (``epochs = "ten"``); unknown names are refused by
    ``create``. Annotations other than plain int/float/str/bool/None/list/tuple/dict
    unions are not checked."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return
    for name, value in params.items():
        param = sig.parameters.get(name)
        if param is None or param.annotation is inspect.Parameter.empty:
            continue
        allowed = _allowed_types(param.annotation)
        if allowed is None:
            continue
        wrong = isinstance(value, bool) and bool not in allowed
        if wrong or not isinstance(value, allowed):
            names = " or ".join(sorted({_TYPE_WORDS[t] for t in allowed}))
            raise HizkitError(
                f"{where}: {kind} '{cls.name}' parameter {name} must be {names}, got {value!r}"
            )


_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "None": (type(None),),
    "list": (list, tuple),
    "tuple": (list, tuple),
    "dict": (dict,),
}
_TYPE_WORDS = {
    int: "a whole number",
    float: "a number",
    str: "a string",
    bool: "true or false",
    type(None): "absent",
    list: "a list",
    tuple: "a list",
    dict: "a table",
}


def _allowed_types(annotation: Any) -> tuple[type, ...] | None:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    allowed: list[type] = []
    for part in str(text).split("|"):
        part = part.strip().split("[")[0]
        if part not in _SIMPLE_TYPES:
            return None
        allowed += _SIMPLE_TYPES[part]
    return tuple(allowed) or None


def check_plugins(doc: dict[str, Any], config: BenchConfig, registry: Any) -> None:
    """Every plugin name and parameter the configuration gives, checked against the
    registry before any data is loaded: the classifiers (each created once, so an
    unknown or wrongly typed parameter fails now, not after other classifiers trained),
    their preprocessor chains, and every ``[preprocessors.X]``, ``[evaluators.X]`` and
    ``[classifiers.X]`` section (a misspelt name is an error with a did-you-mean).

    A plugin may also check its parameters' values before any work by defining a
    ``validate_params()`` method (raising :class:`HizkitError`); it is called here on
    the instance created from the configuration."""
    for spec in config.classifiers:
        cls = registry.get("classifier", spec.plugin)
        where = f"[classifiers.{spec.label}]"
        check_param_types("classifier", cls, spec.params, where)
        _validate(cls.create(**spec.params), where)
        for name in spec.preprocessors or ():
            registry.info("preprocessor", name)
    for label, section in _table(doc, "classifiers").items():
        if any(s.label == label for s in config.classifiers):
            continue
        plugin = section.get("plugin", label)
        if not isinstance(plugin, str):
            raise HizkitError(f"[classifiers.{label}] plugin must be a string, got {plugin!r}")
        try:
            registry.info("classifier", plugin)
        except HizkitError as exc:
            raise HizkitError(f"[classifiers.{label}]: {exc}") from None
    for kind, table in (("preprocessor", "preprocessors"), ("evaluator", "evaluators")):
        for name, params in _table(doc, table).items():
            try:
                cls = registry.get(kind, name)
            except HizkitError as exc:
                raise HizkitError(f"[{table}.{name}]: {exc}") from None
            check_param_types(kind, cls, params, f"[{table}.{name}]")
            _validate(cls.create(**params), f"[{table}.{name}]")


def _validate(plugin: Any, where: str) -> None:
    validate = getattr(plugin, "validate_params", None)
    if not callable(validate):
        return
    try:
        validate()
    except HizkitError as exc:
        raise HizkitError(f"{where}: {exc}") from None
