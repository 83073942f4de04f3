"""The import graph the architecture promises (CONTRIBUTING, "The map"): a builtin plugin
imports the core and its own modules, never another builtin plugin (what two plugins share,
such as survey layouts, lives in the core), and the core imports no plugin (the registry
names the builtins by string in ``BUILTIN_PLUGINS`` and imports them from that list)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
CORE = ROOT / "core"
PACKAGE = "hizkit.plugins"


def module_name(path: Path, folder: Path, package: str) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imported(path: Path, name: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every module ``path`` (importable as ``name``) imports:
    ``import``/``from`` statements anywhere in it (inside functions too, relative ones
    resolved) and ``importlib.import_module``/``__import__`` calls with a literal name."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            # `from hizkit.plugins import jades` imports hizkit.plugins.jades
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            called = getattr(func, "attr", None) or getattr(func, "id", None)
            first = node.args[0] if node.args else None
            if (
                called in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                out.append((node.lineno, first.value))
    return out


def plugin_of(module: str) -> str | None:
    """The builtin plugin a dotted module name belongs to (``hizkit.plugins.mock.survey``
    -> ``mock``), or None outside the plugins package."""
    if not module.startswith(PACKAGE + "."):
        return None
    return module.split(".")[2]


def plugin_files() -> list[tuple[str, Path]]:
    """``(plugin, file)`` for every module of every builtin plugin: ``plugins/<name>.py``
    and every module under ``plugins/<name>/``."""
    files = [(p.stem, p) for p in sorted(PLUGINS.glob("*.py")) if p.name != "__init__.py"]
    for folder in sorted(p for p in PLUGINS.iterdir() if p.is_dir()):
        files += [(folder.name, p) for p in sorted(folder.rglob("*.py"))]
    return files


def test_the_walk_sees_every_plugin():
    names = {plugin for plugin, _ in plugin_files()}
    assert {"mock", "jades", "cnn", "segment", "xgb", "colour"} <= names


@pytest.mark.parametrize(
    "plugin, path", plugin_files(), ids=lambda x: x if isinstance(x, str) else x.name
)
def test_a_plugin_imports_no_other_builtin_plugin(plugin, path):
    name = module_name(path, PLUGINS, PACKAGE)
    others = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for line, module in imported(path, name)
        if plugin_of(module) not in (None, plugin)
    ]
    assert not others, "a plugin imports another builtin plugin:\n" + "\n".join(others)


def test_the_core_imports_no_plugin():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        name = module_name(path, CORE, "hizkit")
        found += [
            f"{path.relative_to(ROOT)}:{line} imports {module}"
            for line, module in imported(path, name)
            if module == PACKAGE or module.startswith(PACKAGE + ".")
        ]
    assert not found, "the core imports a plugin:\n" + "\n".join(found)


def test_the_registry_names_the_builtins_only_in_its_list():
    """The one place the core names builtin plugin modules: ``BUILTIN_PLUGINS``."""
    from hizkit.registry import BUILTIN_PLUGINS

    tree = ast.parse((CORE / "registry.py").read_text())
    named = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(PACKAGE + ".")
    ]
    assert sorted(n.value for n in named) == sorted(BUILTIN_PLUGINS)
    assert all(plugin_of(m) for m in BUILTIN_PLUGINS)


def test_the_walk_catches_an_import_of_another_plugin(tmp_path):
    """The checker itself: each way of importing another plugin is seen."""
    path = tmp_path / "mod.py"
    path.write_text(
        "import hizkit.plugins.jades.layouts\n"
        "from hizkit.plugins import jades\n"
        "from .. import segment\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('hizkit.plugins.cnn')\n"
    )
    modules = [m for _, m in imported(path, "hizkit.plugins.mock.mod")]
    assert {plugin_of(m) for m in modules} >= {"jades", "segment", "cnn"}
