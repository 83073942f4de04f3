"""Shared fixtures: a tiny photometric data source, a small simulated survey, a registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hizkit
from hizkit import NIRCAM_BANDS, Dataset, flux_col, fluxerr_col, radius_col


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Simulated surveys are cached in a per-session directory, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HIZKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HIZKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    yield
    mp.undo()


def tiny_dataset(n_per_class: int = 30, seed: int = 0, size: int = 16) -> Dataset:
    """Sources whose colours separate the classes, with small Gaussian-blob cutouts."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(hizkit.CLASSES, n_per_class)
    n = labels.size
    base = {
        "lowz": np.array([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6]),
        "highz": np.array([0.02, 0.05, 1.0, 1.0, 0.9, 0.9, 0.9]),
        "brown_dwarf": np.array([0.3, 0.8, 0.5, 0.3, 0.3, 0.2, 3.0]),
    }
    flux = np.array([base[c] for c in labels]) * 50 * rng.lognormal(0, 0.2, (n, 1))
    flux = flux + rng.normal(0, 2, flux.shape)
    cat = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "ra": 53.1 + rng.uniform(0, 0.01, n),
            "dec": -27.8 + rng.uniform(0, 0.01, n),
            "label": labels,
            "z": np.where(labels == "highz", 7.0, np.where(labels == "lowz", 1.5, 0.0)),
            "bimodal": rng.random(n) < 0.1,
        }
    )
    for i, b in enumerate(NIRCAM_BANDS):
        cat[flux_col(b)] = flux[:, i]
        cat[fluxerr_col(b)] = 2.0
        cat[radius_col(b)] = 0.1
    yy, xx = np.mgrid[:size, :size] - size / 2 + 0.5
    blob = np.exp(-(xx**2 + yy**2) / 8.0)
    cut = flux[:, :, None, None] * blob / blob.sum() + rng.normal(0, 0.05, (n, 7, size, size))
    unl = cat.drop(columns=["label"]).assign(id=cat["id"] + 10_000)
    return Dataset(
        cat, NIRCAM_BANDS, 0.03, cut.astype(np.float32), unlabelled=unl, meta={"source": "tiny"}
    )


def one_line(outcome, *needles: str) -> str:
    """Assert a one-line error that contains every needle, and return it.

    ``outcome`` is a callable, which must raise :class:`hizkit.HizkitError`, or a command's
    ``(exit status, stderr)`` (the ``cli`` fixture's answer), which must be status 2 and
    one ``hizkit: error:`` line without a traceback."""
    if callable(outcome):
        with pytest.raises(hizkit.HizkitError) as err:
            outcome()
        message = str(err.value)
    else:
        rc, err_text = outcome
        assert rc == 2, err_text
        assert err_text.startswith("hizkit: error: ") and err_text.endswith("\n"), err_text
        assert "Traceback" not in err_text, err_text
        message = err_text[:-1]
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


class TinySource(hizkit.DataSource):
    name = "tiny"
    description = "A few well-separated synthetic sources for the core's tests"

    def __init__(self, n_per_class: int = 30, seed: int = 0, size: int = 32) -> None:
        self.n_per_class = n_per_class
        self.seed = seed
        self.size = size

    def load(self, location=None) -> Dataset:
        return tiny_dataset(self.n_per_class, self.seed, self.size)


class TinyPlugin:
    @hizkit.hookimpl
    def hizkit_register_data_sources(self):
        return [TinySource]


@pytest.fixture
def tiny() -> Dataset:
    return tiny_dataset(size=32)


@pytest.fixture
def registry():
    from hizkit.registry import Registry

    reg = Registry(autoload=False)
    reg.register(TinyPlugin(), name="tests.tiny")
    return reg


@pytest.fixture(scope="session")
def small_mock() -> Dataset:
    """A small simulated survey: the one :mod:`hizkit.testing` checks plugins on (built
    once per test session, shared with the conformance checks)."""
    from hizkit.testing import example_data

    return example_data()


@pytest.fixture(scope="session")
def jades_field(tmp_path_factory):
    """A small simulated survey written in the JADES v2.0 layout (``hizkit simulate``)."""
    from hizkit.plugins.mock import MockSurvey

    out = tmp_path_factory.mktemp("field") / "jades"
    MockSurvey(**MockSurvey.test_params).simulate_to(out)
    return out
