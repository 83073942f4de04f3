"""Settings: a configuration file and command-line flags, read and checked once.

A configuration file looks like::

    [data]
    source = "mock"            # a data source name; `location` is its path, if any
    n_lowz = 300               # any other key is a parameter of the data source

    [bench]
    classifiers = ["cnn", "cnn_weighted", "rf"]
    out = "runs/poster"        # the run directory when --out is not given (bench only)
    runs = 3
    seed = 0
    ceiling = true             # add the reference rows, e.g. the photoz ceiling (default: true)
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

Command-line flags override the file. Every setting of the ``[bench]``, ``[train]`` and
``[predict]`` tables is one :class:`Option` in :data:`OPTIONS`: its table and key, the
commands that take it, its check, its default and its help. The command line's flags
(:func:`add_flags`), the file's known keys, the checks and :class:`Settings` all come from
that one list, so a new setting is one entry there (CONTRIBUTING.md shows one).
"""

from __future__ import annotations

import argparse
import inspect
import math
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hizkit import progress
from hizkit.bench import BenchConfig, ClassifierSpec
from hizkit.cluster import check_scheduler
from hizkit.dataset import CLASSES, Dataset, check_fractions
from hizkit.errors import HizkitError
from hizkit.field import MIN_PURITY
from hizkit.registry import Registry, get_registry
from hizkit.report import default_run_dir

#: configuration files shipped with hizkit, read by name (``--config poster``)
PRESETS = Path(__file__).parent / "presets"
#: tables of plugin sections (``[classifiers.X]``...) and of the data source
PLUGIN_TABLES = ("data", "classifiers", "preprocessors", "evaluators")
#: where each command writes when neither --out nor ``[bench] out`` says
DEFAULT_OUT = {"bench": "hizkit-runs", "train": "hizkit-models", "ablate": "hizkit-ablations"}


# ---------------------------------------------------------------------- checks
# Each check takes the value and where it came from (``--runs`` or ``[bench] runs``) and
# returns the value to use, or raises a one-line HizkitError naming that place.

Check = Callable[[Any, str], Any]


def whole(minimum: int) -> Check:
    """A whole number >= ``minimum``: ``2.7`` or ``"2"`` is refused, not truncated or parsed."""

    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise HizkitError(f"{where} must be a whole number, got {value!r}")
        if value < minimum:
            raise HizkitError(f"{where} must be at least {minimum}, got {value}")
        return int(value)

    check.flag_type = int  # type: ignore[attr-defined]
    return check


def fraction(value: Any, where: str) -> float:
    """A number strictly between 0 and 1."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 < value < 1:
        raise HizkitError(f"{where} must lie between 0 and 1 (exclusive), got {value!r}")
    return float(value)


fraction.flag_type = float  # type: ignore[attr-defined]


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise HizkitError(f"{where} must be true or false, got {value!r}")
    return value


def text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HizkitError(f"{where} must be a non-empty string, got {value!r}")
    return value


def names(value: Any, where: str) -> list[str]:
    """A list of names, from TOML (``["a", "b"]``) or a flag (``a,b``)."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise HizkitError(f"{where} must be a list of names, got {value!r}")
    items = [v for v in items if v]
    if not items:
        raise HizkitError(f"{where} is empty")
    return items


def optional(check: Check) -> Check:
    """``check``, or None for a setting left unset (``evaluators``: every registered one)."""

    def maybe(value: Any, where: str) -> Any:
        return None if value is None else check(value, where)

    maybe.flag_type = getattr(check, "flag_type", str)  # type: ignore[attr-defined]
    return maybe


def fractions(value: Any, where: str) -> tuple[float, float, float]:
    return check_fractions(value, where)


def class_priors(value: Any, where: str) -> tuple[float, ...] | str:
    """A field's class priors (low-z, high-z, brown dwarf), normalised; or ``"sky"``
    (those of the simulated field the model's rates come from) or ``"em"`` (estimated
    from the field's own outputs)."""
    if value in ("em", "sky"):
        return value
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",")]
        except ValueError:
            value = None
    ok = isinstance(value, list | tuple) and len(value) == len(CLASSES)
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not ok or min(value) < 0 or not math.isfinite(sum(value)) or sum(value) <= 0:
        raise HizkitError(
            f"{where} must be 'sky', 'em' or three non-negative numbers (low-z, high-z, brown "
            f"dwarf), got {value!r}"
        )
    return tuple(float(v) / sum(value) for v in value)


def scheduler(value: Any, where: str) -> str | None:
    try:
        return check_scheduler(value)
    except HizkitError as exc:
        raise HizkitError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------- the options


@dataclass(frozen=True)
class Option:
    """One setting: ``[table] key`` in a file and ``--key`` on the command line of each
    command in ``commands`` (no flag when ``flag`` is False)."""

    table: str
    key: str
    check: Check
    default: Any
    help: str
    commands: tuple[str, ...]
    flag: bool = True
    metavar: str | None = None
    #: a command whose default differs (``hizkit ablate`` trains only ``cnn``)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flag_name(self) -> str:
        return "--" + self.key.replace("_", "-")

    def default_for(self, command: str) -> Any:
        return self.defaults.get(command, self.default)

    def flag_type(self) -> Callable[[str], Any]:
        """How argparse reads the flag's text before the check sees it (a check's
        ``flag_type``: ``int`` for :func:`whole`, ``float`` for :func:`fraction`)."""
        return getattr(self.check, "flag_type", str)


OPTIONS: tuple[Option, ...] = (
    Option(
        "bench", "classifiers", names, "cnn,rf",
        "comma-separated classifier labels (default %(default)s)",
        ("bench", "train", "ablate"), metavar="A,B", defaults={"ablate": "cnn"},
    ),
    Option(
        "bench", "evaluators", optional(names), None,
        "comma-separated evaluators (default: every registered one)", ("bench",), metavar="A,B",
    ),
    Option(
        "bench", "runs", whole(1), 1, "repeat with seeds S, S+1, ... (default %(default)s)",
        ("bench", "ablate"), metavar="N",
    ),
    Option(
        "bench", "seed", whole(0), 0,
        "first seed: of the split and the classifiers (default %(default)s)",
        ("bench", "train", "ablate"), metavar="S",
    ),
    Option(
        "bench", "fractions", fractions, (0.6, 0.2, 0.2),
        "training, validation and test shares of the split", ("bench", "ablate"), flag=False,
    ),
    Option(
        "bench", "ceiling", boolean, True,
        "add the reference rows (the photoz template-fitting ceiling) to the comparison",
        ("bench",), flag=False,
    ),
    Option(
        "bench", "min_purity", fraction, MIN_PURITY,
        "the purity the field test's candidate lists are selected at (default %(default)s)",
        ("bench", "train"), metavar="P",
    ),
    Option(
        "bench", "out", optional(text), None,
        "new run directory (default hizkit-runs/<time>)", ("bench",), metavar="DIR",
    ),
    Option(
        "bench", "scheduler", scheduler, None,
        "run the independent pieces on Dask: local:N (N worker processes here) or a "
        "scheduler address (tcp://host:8786); default: in this process",
        ("bench",), metavar="S",
    ),
    Option(
        "train", "valid_fraction", fraction, 0.2,
        "fraction held out for validation (default %(default)s)", ("train",), metavar="F",
    ),
    Option(
        "predict", "chunk_size", whole(1), 1024,
        "sources per chunk (default %(default)s; memory grows with it)", ("predict",),
        metavar="N",
    ),
    Option(
        "predict", "top", whole(0), 25, "candidates per class in the HTML (default %(default)s)",
        ("predict",), metavar="N",
    ),
    Option(
        "predict", "min_purity", optional(fraction), MIN_PURITY,
        "draw the high-z and brown-dwarf lists at this expected purity, from the rates the "
        "model measured on its simulated field at this field's estimated priors "
        "(default %(default)s)",
        ("predict",), metavar="P",
    ),
    Option(
        "predict", "threshold", optional(fraction), None,
        "draw the lists at this calibrated probability instead (the expected purity is "
        "stated)", ("predict",), metavar="T",
    ),
    Option(
        "predict", "priors", class_priors, "sky",
        "the field's class priors: low-z,high-z,brown-dwarf (e.g. 0.875,0.12,0.005); sky: "
        "those of the simulated field the model's rates were measured on (the default); em: "
        "estimated from this field's own outputs (Saerens et al. 2002; wrong where the "
        "field's sources differ from the training set's)",
        ("predict",), metavar="P,P,P",
    ),
    Option(
        "predict", "scheduler", scheduler, None,
        "classify chunks on Dask: local:N or a scheduler address; default: in this process",
        ("predict",), metavar="S",
    ),
)  # fmt: skip


def table_keys() -> dict[str, set[str]]:
    """The keys each settings table takes (for the file's check)."""
    keys: dict[str, set[str]] = {}
    for option in OPTIONS:
        keys.setdefault(option.table, set()).add(option.key)
    return keys


def options(command: str) -> list[Option]:
    """The options ``command`` takes, in :data:`OPTIONS` order."""
    return [o for o in OPTIONS if command in o.commands]


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The command-line flags of ``command``'s options (each defaults to None: unset, so
    the file's value or the option's default applies)."""
    for option in options(command):
        if option.flag:
            parser.add_argument(
                option.flag_name,
                dest=option.key,
                type=option.flag_type(),
                metavar=option.metavar,
                help=option.help % {"default": option.default_for(command)}
                + f"; [{option.table}] {option.key}",
            )


# ---------------------------------------------------------------------- the file


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
    check_document(doc, f"config file {path}: ")
    return doc


def check_document(doc: Mapping[str, Any], prefix: str = "") -> None:
    """The document's shape: known tables, tables where tables belong, known keys."""
    tables = table_keys()
    sections = {*PLUGIN_TABLES, *tables}
    unknown = set(doc) - sections
    if unknown:
        raise HizkitError(
            f"{prefix}unknown section(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(sections))}"
        )
    for name, value in doc.items():
        if not isinstance(value, dict):
            raise HizkitError(
                f"{prefix}[{name}] must be a table (a line '[{name}]' followed by its keys), "
                f"got {name} = {value!r}"
            )
    for name in PLUGIN_TABLES[1:]:
        for key, value in doc.get(name, {}).items():
            if not isinstance(value, dict):
                raise HizkitError(
                    f"{prefix}[{name}.{key}] must be a table of parameters, got {key} = {value!r}"
                )
    for table, keys in tables.items():
        bad = set(doc.get(table, {})) - keys
        if bad:
            raise HizkitError(
                f"{prefix}unknown [{table}] key(s) {', '.join(sorted(bad))}; "
                f"known: {', '.join(sorted(keys))}"
            )


# ---------------------------------------------------------------------- settings


@dataclass
class DataSpec:
    source: str = "mock"
    location: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str, params: dict[str, Any] | None = None) -> DataSpec:
        """``NAME`` or ``NAME:LOCATION`` (e.g. ``mock``, ``jades:/data/jades``)."""
        name, _, location = spec.partition(":")
        if not name:
            raise HizkitError(f"bad --data value {spec!r}: expected NAME or NAME:LOCATION")
        return cls(name.strip(), location or None, dict(params or {}))

    @property
    def text(self) -> str:
        return f"{self.source}:{self.location or ''}"


class Section(Mapping[str, Any]):
    """One table's settings for a command, read as attributes (``settings.predict.top``)."""

    def __init__(self, table: str, values: Mapping[str, Any]) -> None:
        self._table = table
        self._values = dict(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["_values"][key]
        except KeyError:
            raise AttributeError(f"[{self._table}] has no setting {key!r} here") from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._table!r}, {self._values!r})"


@dataclass(frozen=True)
class Settings:
    """Everything one command was told, checked: build it with :meth:`load`.

    ``data`` says where the sources come from (:meth:`dataset` loads them),
    ``classifiers`` what to train (bench, train, ablate), ``config`` the harness's
    :class:`BenchConfig`; ``bench``, ``train`` and ``predict`` hold the tables' options
    for this command (``settings.predict.chunk_size``); ``out`` the output path asked for.
    """

    command: str
    data: DataSpec
    classifiers: tuple[ClassifierSpec, ...]
    tables: Mapping[str, Section]
    preprocessor_params: Mapping[str, dict[str, Any]]
    evaluator_params: Mapping[str, dict[str, Any]]
    out: Path | None
    #: True when the data came from --data or a [data] table rather than the default
    data_given: bool = False

    @classmethod
    def load(
        cls,
        doc: Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
        command: str = "bench",
        *,
        registry: Registry | None = None,
        check_data: bool = True,
    ) -> Settings:
        """Read ``doc`` (a parsed configuration, e.g. :func:`read_toml`) under ``flags``
        (flag name -> value, None for a flag not given) for ``command``; check every
        value, and every plugin name and parameter against the registry, before any data
        is loaded: a typo costs nothing. ``check_data=False`` for a caller that brings
        its own Dataset (the data source is then not needed)."""
        doc = dict(doc or {})
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        check_document(doc)
        tables: dict[str, dict[str, Any]] = {}
        for option in options(command):
            if option.flag and option.key in flags:
                value, where = flags[option.key], option.flag_name
            else:
                value = doc.get(option.table, {}).get(option.key, option.default_for(command))
                where = f"[{option.table}] {option.key}"
            tables.setdefault(option.table, {})[option.key] = option.check(value, where)
        data = _data_spec(doc, flags.get("data"))
        specs: tuple[ClassifierSpec, ...] = ()
        if "classifiers" in tables.get("bench", {}):
            specs = tuple(_classifier_specs(doc, tables["bench"]["classifiers"]))
        out = flags.get("out", tables.get("bench", {}).get("out"))
        settings = cls(
            command=command,
            data=data,
            classifiers=specs,
            tables={t: Section(t, v) for t, v in tables.items()},
            preprocessor_params=_plugin_table(doc, "preprocessors"),
            evaluator_params=_plugin_table(doc, "evaluators"),
            out=Path(out) if out is not None else None,
            data_given="data" in flags or "data" in doc,
        )
        if specs:
            settings.config.validate()
        settings.check(doc, registry or get_registry(), check_data)
        return settings

    def __getattr__(self, table: str) -> Section:
        tables = self.__dict__.get("tables", {})
        if table in tables:
            return tables[table]
        raise AttributeError(f"{type(self).__name__} of '{self.command}' has no {table!r}")

    @property
    def config(self) -> BenchConfig:
        """The harness's configuration: reference rows (``[bench] ceiling``) and the
        evaluators only for ``hizkit bench``; train and ablate run no evaluator."""
        bench = self.tables.get("bench", Section("bench", {}))
        is_bench = self.command == "bench"
        return BenchConfig(
            classifiers=list(self.classifiers),
            evaluators=bench.get("evaluators") if is_bench else [],
            runs=bench.get("runs", 1),
            seed=bench.get("seed", 0),
            fractions=bench.get("fractions", (0.6, 0.2, 0.2)),
            preprocessor_params=dict(self.preprocessor_params),
            evaluator_params=dict(self.evaluator_params),
            references=bool(bench.get("ceiling", False)) and is_bench,
            min_purity=bench.get("min_purity", MIN_PURITY),
        )

    def check(self, doc: Mapping[str, Any], registry: Registry, data: bool = True) -> None:
        """Every plugin name and parameter against ``registry`` (the data source's only
        with ``data``)."""
        if data:
            source_cls = registry.get("data_source", self.data.source)
            check_param_types("data source", source_cls, self.data.params, "[data]")
        for spec in self.classifiers:
            registry.info("classifier", spec.plugin)
        for name in self.config.evaluators or []:
            registry.info("evaluator", name)
        check_plugins(doc, self.classifiers, registry)

    def output(self) -> Path:
        """Where to write: ``out``, else a new time-stamped directory of the command's."""
        return self.out or default_run_dir(DEFAULT_OUT.get(self.command, "hizkit-out"))

    def dataset(self, registry: Registry | None = None) -> Dataset:
        """The data, loaded by its source (the one place a command loads data)."""
        registry = registry or get_registry()
        progress.log(f"loading data: {self.data.source}")
        source = registry.create("data_source", self.data.source, **self.data.params)
        return source.load(self.data.location)


def _plugin_table(doc: Mapping[str, Any], table: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in doc.get(table, {}).items()}


def _data_spec(doc: Mapping[str, Any], flag: str | None) -> DataSpec:
    data_doc = dict(doc.get("data", {}))
    source = text(data_doc.pop("source", "mock"), "[data] source")
    location = data_doc.pop("location", None)
    if location is not None:
        location = text(location, "[data] location")
    if flag is None:
        return DataSpec(source, location, data_doc)
    spec = DataSpec.parse(flag, data_doc)
    if spec.source != source:
        spec.params = {}  # the file's data options belong to another source
    return spec


def _classifier_specs(doc: Mapping[str, Any], labels: list[str]) -> Iterator[ClassifierSpec]:
    sections = doc.get("classifiers", {})
    for label in labels:
        section = dict(sections.get(label, {}))
        plugin = text(section.pop("plugin", label), f"[classifiers.{label}] plugin")
        chain = section.pop("preprocessors", None)
        if chain is not None:
            where = f"[classifiers.{label}] preprocessors"
            chain = tuple(names(chain, where)) if chain else ()
        yield ClassifierSpec(label, plugin, section, chain)


# ---------------------------------------------------------------------- plugin parameters


def check_param_types(kind: str, cls: type, params: Mapping[str, Any], where: str) -> None:
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
            words = " or ".join(sorted({_TYPE_WORDS[t] for t in allowed}))
            raise HizkitError(
                f"{where}: {kind} '{cls.name}' parameter {name} must be {words}, got {value!r}"
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
    spelled = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    allowed: list[type] = []
    for part in str(spelled).split("|"):
        part = part.strip().split("[")[0]
        if part not in _SIMPLE_TYPES:
            return None
        allowed += _SIMPLE_TYPES[part]
    return tuple(allowed) or None


def check_plugins(
    doc: Mapping[str, Any], classifiers: tuple[ClassifierSpec, ...] | list, registry: Registry
) -> None:
    """Every plugin name and parameter the configuration gives, checked against the
    registry before any data is loaded: the classifiers (each created once, so an
    unknown or wrongly typed parameter fails now, not after other classifiers trained),
    their preprocessor chains, and every ``[preprocessors.X]``, ``[evaluators.X]`` and
    ``[classifiers.X]`` section (a misspelt name is an error with a did-you-mean).

    A plugin may also check its parameters' values before any work by defining a
    ``validate_params()`` method (raising :class:`HizkitError`); it is called here on
    the instance created from the configuration."""
    for spec in classifiers:
        cls = registry.get("classifier", spec.plugin)
        where = f"[classifiers.{spec.label}]"
        check_param_types("classifier", cls, spec.params, where)
        _validate(cls.create(**spec.params), where)
        for name in spec.preprocessors or ():
            registry.info("preprocessor", name)
    for label, section in doc.get("classifiers", {}).items():
        if any(s.label == label for s in classifiers):
            continue
        plugin = section.get("plugin", label)
        if not isinstance(plugin, str):
            raise HizkitError(f"[classifiers.{label}] plugin must be a string, got {plugin!r}")
        try:
            registry.info("classifier", plugin)
        except HizkitError as exc:
            raise HizkitError(f"[classifiers.{label}]: {exc}") from None
    for kind, table in (("preprocessor", "preprocessors"), ("evaluator", "evaluators")):
        for name, params in doc.get(table, {}).items():
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
