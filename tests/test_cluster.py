"""Dask: hizkit predict and bench on a 2-process LocalCluster give the in-process results,
and a worker killed during predict still yields every source exactly once."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pandas as pd
import pytest

import hizkit
from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark
from hizkit.cli import main
from hizkit.cluster import check_scheduler
from hizkit.model import save_models
from hizkit.predict import field_source, predict_field
from hizkit.training import train_models

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c


@pytest.fixture(scope="module")
def field(jades_field):
    return jades_field


@pytest.fixture(scope="module")
def model(tmp_path_factory, small_mock):
    config = BenchConfig([ClassifierSpec("xgb", "xgb", {"n_estimators": 20, "n_jobs": 1})])
    models = train_models(small_mock, config)
    save_models(models, tmp_path_factory.mktemp("m") / "models")
    return models["xgb"]


def _source(model):
    return field_source(model, "jades")


def test_scheduler_values():
    assert check_scheduler("local:2") == "local:2"
    assert check_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    assert check_scheduler(None) is None
    for bad in ("local:0", "local:x", "nonsense"):
        with pytest.raises(hizkit.HizkitError):
            check_scheduler(bad)


def test_unreachable_scheduler_is_one_line(model, field, tmp_path, capsys):
    rc = main(["predict", "--model", str(model.path), "--data", f"jades:{field}",
               "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Dask scheduler" in err and err.count("\n") == 1


def test_predict_on_cluster_equals_in_process(model, field, cluster, tmp_path):
    here = predict_field(model, _source(model), str(field), tmp_path / "here", chunk_size=9)
    there = predict_field(
        model,
        _source(model),
        str(field),
        tmp_path / "there",
        chunk_size=9,
        scheduler=cluster.scheduler_address,
    )
    pd.testing.assert_frame_equal(here, there)
    assert there["id"].is_unique


class FirstChunkDone(distributed.SchedulerPlugin):
    """Sets ``done`` when the scheduler learns that a predict chunk task has finished."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "memory" and str(key).startswith("hizkit-chunk-"):
            self.done.set()


def test_predict_survives_a_killed_worker(model, field, cluster, tmp_path):
    client = distributed.Client(cluster)
    pids = list(client.run(os.getpid).values())
    client.close()
    out = tmp_path / "killed"
    result = {}

    def work():
        result["table"] = predict_field(
            model,
            _source(model),
            str(field),
            out,
            chunk_size=2,
            scheduler=cluster.scheduler_address,
        )

    first_chunk = FirstChunkDone()  # the scheduler runs in this process: it sets the event
    cluster.scheduler.add_plugin(first_chunk, name="first-chunk")
    try:
        thread = threading.Thread(target=work)
        thread.start()
        assert first_chunk.done.wait(timeout=120), "no chunk finished within 120 s"
    finally:
        cluster.scheduler.remove_plugin(name="first-chunk")
    assert list((out / "chunks").glob("chunk-*.csv"))  # a finished task has written its chunk
    killed_while_running = thread.is_alive()
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    table = result["table"]
    reference = predict_field(model, _source(model), str(field), tmp_path / "ref", chunk_size=2)
    pd.testing.assert_frame_equal(table, reference)
    assert table["id"].is_unique
    assert killed_while_running


def test_bench_on_cluster_equals_in_process(small_mock, cluster):
    config = BenchConfig(
        [
            ClassifierSpec("logistic", "logistic"),
            ClassifierSpec("xgb", "xgb", {"n_estimators": 15, "n_jobs": 1}),
        ],
        evaluators=["classification"],
        runs=2,
    )
    here = run_benchmark(small_mock, config)
    there = run_benchmark(small_mock, config, scheduler=cluster.scheduler_address)
    assert [(r.label, r.run) for r in here.runs] == [(r.label, r.run) for r in there.runs]
    for a, b in zip(here.runs, there.runs, strict=True):
        np.testing.assert_array_equal(a.proba, b.proba)
        assert a.evaluations["classification"].metrics == b.evaluations["classification"].metrics
