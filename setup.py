"""Package discovery for the two import roots: ``core/`` is ``hizkit`` and ``plugins/`` is
``hizkit.plugins`` (``package-dir`` in pyproject.toml). setuptools' ``find`` cannot add a
prefix to the packages it finds, so they are found here from the tree: a plugin split into a
package (``plugins/jades/``) is in the wheel without editing a list. Data folders
(``plugins/layouts/``) count as namespace packages, so their ``*.toml`` files
(``package-data`` in pyproject.toml) ship wherever they sit."""

from setuptools import find_namespace_packages, setup

SKIP = ["__pycache__", "*.__pycache__"]


def packages(root: str, directory: str) -> list[str]:
    found = find_namespace_packages(directory, exclude=SKIP)
    return [root, *(f"{root}.{name}" for name in found)]


setup(packages=packages("hizkit", "core") + packages("hizkit.plugins", "plugins"))
