"""Executors' building blocks: the per-cell time limit, thread limits, the store's progress."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from xaibench.errors import XaibenchError
from xaibench.experiment.executors import (LocalExecutor, _training_threads, limit_threads,
                                           make_executor, time_limit)
from xaibench.experiment.store import CellRecord, Store


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_time_limit_interrupts_a_python_loop_past_its_seconds():
    started = time.monotonic()
    with pytest.raises(XaibenchError, match=r"cell c exceeded the cell timeout of 0\.2 s; raise "
                                            r"--cell-timeout"):
        with time_limit(0.2, "cell c"):
            _spin(10)
    assert time.monotonic() - started < 5


def test_time_limit_raises_again_when_the_first_interrupt_is_swallowed():
    """An interrupt landing in code that swallows it (a garbage-collector callback of a Dask
    worker did) is raised again until the block ends."""
    started = time.monotonic()
    with pytest.raises(XaibenchError, match=r"cell c exceeded the cell timeout of 0\.2 s"):
        with time_limit(0.2, "cell c"):
            try:
                _spin(10)
            except BaseException:  # noqa: BLE001 - swallowed where it landed
                pass
            _spin(10)
    assert time.monotonic() - started < 5


def test_time_limit_lets_a_block_within_its_seconds_finish_and_never_fires_later():
    with time_limit(0.3, "cell c"):
        _spin(0.01)
    _spin(0.5)  # the cancelled timer raises nothing afterwards


def test_time_limit_none_is_no_limit():
    with time_limit(None, "cell c"):
        _spin(0.01)


def test_an_exception_within_the_limit_passes_through_unchanged():
    with pytest.raises(ValueError, match="own"):
        with time_limit(5, "cell c"):
            raise ValueError("own")


def test_limit_threads_sets_torch_blas_and_the_environment():
    torch = pytest.importorskip("torch")
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    saved = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "XLA_FLAGS",
                                                  "TF_NUM_INTRAOP_THREADS")}
    try:
        limit_threads(1)
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
        assert "intra_op_parallelism_threads=1" in os.environ["XLA_FLAGS"]
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    finally:
        torch.set_num_threads(before)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), ("", None), ("0", None),
                                             ("many", None)])
def test_training_threads_follow_the_drivers_omp_num_threads(monkeypatch, value, expected):
    """Dask trains with the driver's thread count, so a model equals the local run's."""
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert _training_threads() == expected


def test_the_default_executor_is_local():
    assert make_executor() == LocalExecutor()
    assert make_executor("local", cell_timeout=3) == LocalExecutor(3)


def test_progress_counts_done_failed_and_pending_cells(tmp_path):
    store = Store(tmp_path)
    assert store.progress().pending is None  # the plan size is not recorded
    store.set_meta("planned_cells", 4)

    def record(key: str, explainer: str) -> CellRecord:
        return CellRecord(key, "digits", "torch", "mlp", "m", explainer, None, {}, 0)

    store.put_cell(record("a", "random"), {"values": np.zeros(2)})
    store.put_failure(record("b", "partition"), "it broke")
    progress = store.progress()
    assert (progress.done, progress.pending, progress.planned) == (1, 2, 4)
    assert progress.failures == (("partition/-/torch:mlp", "it broke"),)


def test_workers_adopt_the_drivers_entries_with_every_declaration():
    from xaibench.registry import Registry, explainers

    worker = Registry("explainer")
    worker.register("edge", "elsewhere:edge")  # a name the worker has keeps its own entry
    for entry in explainers.entries():
        worker.adopt(entry)
    assert worker.entry("partition") == explainers.entry("partition")
    assert worker.entry("partition").budget == "max_evals"
    assert "masker" in worker.entry("partition").consumes
    assert not worker.entry("random").additive
    assert worker.entry("edge").target == "elsewhere:edge"
