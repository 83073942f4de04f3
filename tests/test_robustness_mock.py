"""Fault injection (issue 16): the simulated survey never hangs, and its cache heals
(damaged entries rebuilt, partial files of killed runs removed, keyed by everything the
build depends on, a read-only cache falls back to memory)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import hizkit
from hizkit.atomic import TAG, _host
from hizkit.plugins.mock import MockSurvey, sps, survey

TINY = dict(n_lowz=3, n_highz=3, n_brown_dwarfs=1, n_unlabelled=0, cutout_size=16, seed=11)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory (the SPS template library already loaded)."""
    sps.library()
    monkeypatch.setenv("HIZKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def entry(cache, **params):
    source = MockSurvey(**{**TINY, **params})
    return cache / f"mock-{survey.cache_key(source._validated())}.npz"


def said(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_cuts_nothing_passes_do_not_hang(tmp_path):
    """Once a spin with no output: now a one-line error, well within the timeout."""
    cfg = tmp_path / "c.toml"
    text = "[data]\n" + "".join(f"{k} = {v}\n" for k, v in TINY.items())
    cfg.write_text(text + "[data.quality_cuts]\nmin_snr = 1e9\n")
    code = (
        "import sys; from hizkit.cli import main; sys.exit(main(['bench', '--config', "
        f"{str(cfg)!r}, '--classifiers', 'colour', '--out', {str(tmp_path / 'r')!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("hizkit: error: mock:") and "relax quality_cuts" in last
    assert "Traceback" not in proc.stderr and not (tmp_path / "r").exists()


def test_undetectable_sources_do_not_hang():
    with pytest.raises(hizkit.HizkitError, match="lower detection_snr"):
        MockSurvey(**TINY, detection_snr=1e6, cache=False).load()


def test_exact_cuts_that_pass_nothing_stop(cache, monkeypatch):
    """Candidates that pass the loosened pre-selection but never the exact cuts on their
    images: bounded rounds, then one line."""
    monkeypatch.setattr(survey, "preselect", lambda phot, cuts: np.ones(len(phot["flux"]), bool))
    with pytest.raises(hizkit.HizkitError, match="rounds of rendered candidates kept none"):
        MockSurvey(**TINY, quality_cuts={"min_snr": 1e9}, cache=False).load()


@pytest.mark.parametrize("damage", ["truncated", "bit_flip"])
def test_damaged_cache_is_rebuilt(cache, capsys, damage):
    first = MockSurvey(**TINY).load()
    path = entry(cache)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 3] ^= 0x10  # inside a member: its CRC-32 no longer matches
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    again = MockSurvey(**TINY).load()
    text = said(capsys)
    assert "is damaged" in text and "rebuilding it" in text
    np.testing.assert_array_equal(again.cutouts, first.cutouts)
    survey.load(path)  # the rebuilt entry reads back whole


def test_partial_files_of_killed_runs_are_cleaned(cache):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its process id is free now
    cache.mkdir(parents=True)
    dead = cache / f".mock-0123456789abcdef.{TAG}-{_host()}-{proc.pid}.x1y2.npz"
    dead.write_bytes(b"half a survey")
    live = cache / f".mock-0123456789abcdef.{TAG}-{_host()}-{os.getpid()}.x3y4.npz"
    live.write_bytes(b"being written")
    old = cache / ".mock-fedcba9876543210.abcdefgh.npz"  # an older version's temporary
    old.write_bytes(b"")
    os.utime(old, (1, 1))
    MockSurvey(**TINY).load()
    assert not dead.exists() and not old.exists()
    assert live.exists()


def test_cache_key_covers_core_modules_and_libraries(monkeypatch):
    params = MockSurvey(**TINY)._validated()
    key = survey.cache_key(params)
    versions = survey.library_versions()
    assert {"numpy", "galsim", "bagpipes"} <= set(versions)
    monkeypatch.setattr(survey, "library_versions", lambda: {**versions, "numpy": "0.0"})
    assert survey.cache_key(params) != key
    monkeypatch.undo()
    import hizkit.cuts

    assert "cuts.py" in survey.CORE_MODULES and hizkit.cuts.__file__.endswith("cuts.py")


def test_unwritable_cache_builds_in_memory(tmp_path, monkeypatch, capsys):
    sps.library()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HIZKIT_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    data = MockSurvey(**TINY).load()
    assert len(data) == 7
    text = said(capsys)
    assert "cannot write the survey cache" in text and "in memory" in text


def test_two_processes_build_one_survey_once(tmp_path):
    """The second process waits on the cache entry's lock and loads the first's build."""
    import subprocess
    import sys

    code = (
        "from hizkit.plugins.mock import MockSurvey, survey; build = survey.build;"
        "survey.build = lambda p: (print('BUILD'), build(p))[1];"
        "MockSurvey(n_lowz=20, n_highz=20, n_brown_dwarfs=3, n_unlabelled=0,"
        " cutout_size=32, seed=77).load(); print('built')"
    )
    env = {**__import__("os").environ, "HIZKIT_CACHE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and all("built" in o for o in outs)
    assert sum(o.count("BUILD") for o in outs) == 1  # the second waited and loaded
    entries = list(tmp_path.glob("mock-*.npz"))
    assert len(entries) == 1
    assert not list(tmp_path.glob(".mock-*"))  # no partial file left behind
