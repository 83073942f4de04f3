"""Fault injection (issue 16): finished work is never lost when writing fails or the
output name is taken meanwhile; killed writes are cleaned; outputs follow the umask."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_line
from test_robustness import cli  # noqa: F401 - the fixture

from hizkit import atomic


def test_directory_taken_meanwhile_keeps_the_finished_one(tmp_path, capsys):
    out = tmp_path / "run"
    target = atomic.new_directory(out)
    with target as tmp:
        (tmp / "results.json").write_text("{}")
        out.mkdir()  # another run given the same --out finished first
        (out / "theirs.txt").write_text("x")
    assert target.path == tmp_path / "run-2"
    assert (tmp_path / "run-2" / "results.json").is_file()
    assert (out / "theirs.txt").is_file()  # the other run is untouched
    assert "run-2" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_two_default_names_in_one_second(tmp_path):
    from hizkit.report import default_run_dir

    first, second = default_run_dir(tmp_path), default_run_dir(tmp_path)
    assert first == second  # same second: the same name is picked...
    a, b = atomic.new_directory(first), atomic.new_directory(second)
    with a as ta, b as tb:
        (ta / "a").write_text("a")
        (tb / "b").write_text("b")
    assert {a.path, b.path} == {first, first.with_name(first.name + "-2")}  # ...both kept


def test_user_file_taken_meanwhile(tmp_path, capsys):
    out = tmp_path / "fig.png"
    target = atomic.new_file(out)
    with target as tmp:
        tmp.write_bytes(b"mine")
        out.write_bytes(b"theirs")
    assert out.read_bytes() == b"theirs"
    assert target.path == tmp_path / "fig-2.png" and target.path.read_bytes() == b"mine"


def test_stale_temporaries_of_killed_processes_are_cleaned(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a process id that is no longer running
    prefix = f".run.{atomic.TAG}-{atomic._host()}-"
    dead_dir = tmp_path / f"{prefix}{proc.pid}.abcd"
    dead_dir.mkdir()
    (dead_dir / "half.json").write_text("{")
    dead_file = tmp_path / f"{prefix}{proc.pid}.efgh.png"
    dead_file.write_text("")
    alive = tmp_path / f"{prefix}{os.getpid()}.ijkl"
    alive.mkdir()
    with atomic.new_directory(tmp_path / "new"):
        pass
    assert not dead_dir.exists() and not dead_file.exists()
    assert alive.exists()  # a write in progress is left alone


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic.new_directory(tmp_path / "d") as tmp, atomic.replace_file(tmp / "f.txt") as f:
            f.write_text("x")
        with atomic.new_file(tmp_path / "g.png") as g:
            g.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "d" / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "g.png").stat().st_mode & 0o777 == 0o644


def test_too_long_name_is_refused_before_work(cli, tmp_path):  # noqa: F811
    long = tmp_path / ("x" * 300)
    one_line(cli("bench", "--data", "boom", "--classifiers", "colour", "--out", str(long)))


def _bench(cli, out: Path):  # noqa: F811
    return cli(
        "bench",
        *("--data", "tiny", "--classifiers", "colour", "--evaluators", "classification"),
        *("--out", str(out)),
    )


def test_out_taken_during_the_run(cli, tmp_path, monkeypatch):  # noqa: F811
    import hizkit.cli

    out = tmp_path / "r"
    real = hizkit.cli.run_benchmark

    def and_meanwhile(*args, **kwargs):
        result = real(*args, **kwargs)
        out.mkdir()  # a second `hizkit bench --out r` finished first
        (out / "results.json").write_text("{}")
        return result

    monkeypatch.setattr(hizkit.cli, "run_benchmark", and_meanwhile)
    rc, err = _bench(cli, out)
    assert rc == 0, err
    assert "r-2" in err and (tmp_path / "r-2" / "results.json").stat().st_size > 100
    assert (out / "results.json").read_text() == "{}"


@pytest.mark.parametrize("fail", ["disk full", "figure bug"])
def test_write_failure_keeps_the_run(cli, tmp_path, monkeypatch, fail):  # noqa: F811
    import hizkit.report

    real = hizkit.report._write_into
    calls = []

    def failing(tmp, *args):
        calls.append(tmp)
        if len(calls) == 1:
            (tmp / "results.json").write_text("{")
            if fail == "disk full":
                raise OSError(errno.ENOSPC, "No space left on device")
            raise ZeroDivisionError("a plugin's plot failed")
        return real(tmp, *args)

    monkeypatch.setattr(hizkit.report, "_write_into", failing)
    out = tmp_path / "r"
    if fail == "disk full":
        rc, err = _bench(cli, out)
        one_line((rc, err), "No space left on device", "kept in")
    else:
        with pytest.raises(ZeroDivisionError):
            _bench(cli, out)
    kept = calls[1]
    assert kept.name.startswith("r.recovered-") and (kept / "results.json").stat().st_size > 100
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupt_after_the_write_says_the_run_is_complete(cli, tmp_path, monkeypatch):  # noqa: F811
    import hizkit.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hizkit.cli.console, "print", interrupted)
    rc, err = _bench(cli, tmp_path / "r")
    assert rc == 130 and "was written completely" in err and (tmp_path / "r").is_dir()


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_a_killed_write_is_cleaned_next_time(tmp_path, kind):
    """SIGKILL in the middle of a write leaves a hidden temporary; the next write
    beside it removes it (the writer's process is gone)."""
    target = tmp_path / ("run" if kind == "directory" else "fig.png")
    helper = "new_directory" if kind == "directory" else "new_file"
    code = (
        "import os, signal\n"
        "from pathlib import Path\n"
        f"from hizkit.atomic import {helper}\n"
        f"with {helper}({str(target)!r}) as tmp:\n"
        "    (tmp / 'half.json' if tmp.is_dir() else tmp).write_text('{')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(left) == 1 and not target.exists()
    with atomic.new_directory(tmp_path / "next"):
        pass
    assert not left[0].exists()


def test_simulate_checks_the_output_before_simulating(cli, tmp_path):  # noqa: F811
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rc, err = cli("simulate", "--out", str(blocker / "sim"), "--n-lowz", "1")
    one_line((rc, err), "is a file, not a directory")


def test_trained_models_are_kept_when_out_is_taken(cli, tmp_path, monkeypatch):  # noqa: F811
    import hizkit.cli

    out = tmp_path / "models"
    real = hizkit.cli.train_models

    def and_meanwhile(*args, **kwargs):
        models = real(*args, **kwargs)
        out.mkdir()  # someone else's models appeared at --out during training
        return models

    monkeypatch.setattr(hizkit.cli, "train_models", and_meanwhile)
    rc, err = cli("train", "--data", "tiny", "--classifiers", "colour", "--out", str(out))
    assert rc == 0, err
    assert "appeared while hizkit was working" in err and "models-2" in err
    assert not any(out.iterdir())  # the other run's directory is left as it was
    kept = tmp_path / "models-2"
    assert (kept / "colour" / "manifest.json").is_file()
    assert hizkit.load_model(kept / "colour").label == "colour"
