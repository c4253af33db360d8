"""Speed-up of the Dask executor (a LocalCluster of N worker processes) over the local one.

A CPU-bound grid (digits, a torch MLP, permutation and partition explainers over two maskers
and three target counts: 12 cells of a few seconds each) runs once with the local executor and
once on Dask, into fresh results directories. Both are timed warm: the same grid on 2 images has
run once before, untimed, in this process and in each worker process, so neither time includes
training (the checkpoint cache is shared), imports or numba's compilation of shap (about 8 s per
process and explainer). Prints both wall times, the cluster's start-up time, the speed-up, and
checks that both runs stored the same cells, and the cores each executor kept busy (CPU seconds
of its processes ÷ wall seconds: a local run's BLAS/torch threads already use part of a second
core, which bounds the speed-up below N).

    .venv/bin/python benchmarks/dask_speedup.py [--workers 2] [--images 48]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from xaibench.experiment import ExperimentConfig, Store, parse_config, run
from xaibench.experiment.executors import DaskExecutor, local_cluster

GRID = """
name = "dask_speedup"
seed = 3
metrics = ["additivity"]

[dataset]
name = "digits"
n_train = 500
n_background = 10

[images]
first = {images}

[[models]]
backend = "torch"
architecture = "mlp"
train = {{ epochs = 2, batch_size = 32, lr = 1e-2 }}
{explainers}
"""
EXPLAINER = """
[[explainers]]
name = "{name}"
maskers = ["blur(3,3)", "constant(0)"]
targets = {targets}
params = {{ max_evals = {max_evals} }}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--images", type=int, default=48, help="explained images per cell")
    args = parser.parse_args()
    explainers = "".join(EXPLAINER.format(name=name, targets=targets, max_evals=max_evals)
                         for name, max_evals in (("permutation", 387), ("partition", 400))
                         for targets in (1, 2, 3))
    config = parse_config(GRID.format(images=args.images, explainers=explainers))
    warm_up = parse_config(GRID.format(images=2, explainers=explainers))
    import distributed

    def cpu_seconds(client: distributed.Client | None = None) -> float:
        """CPU seconds of this process, plus those of the cluster's workers."""
        workers = sum(client.run(time.process_time).values()) if client else 0.0
        return time.process_time() + workers

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cache = root / "checkpoints"
        run(warm_up, root / "warm", progress=False, cache_dir=cache)  # trains the model
        started, cpu = time.perf_counter(), cpu_seconds()
        local = run(config, root / "local", progress=False, cache_dir=cache)
        local_seconds = time.perf_counter() - started
        local_cores = (cpu_seconds() - cpu) / local_seconds

        started = time.perf_counter()
        with local_cluster(args.workers, retries=0) as cluster, \
                distributed.Client(cluster) as client:
            startup = time.perf_counter() - started
            executor = DaskExecutor(scheduler=cluster.scheduler_address)
            client.run(_warm_up, warm_up, root, cache)
            started, cpu = time.perf_counter(), cpu_seconds(client)
            dask = run(config, root / "dask", progress=False, cache_dir=cache,
                       executor=executor)
            dask_seconds = time.perf_counter() - started
            dask_cores = (cpu_seconds(client) - cpu) / dask_seconds
        same = Store(root / "local").done_keys() == Store(root / "dask").done_keys()
    assert local.n_finished == dask.n_finished == len(config.explainers) * 2, (local, dask)
    print(f"grid: {local.n_cells} cells, {args.images} images each (digits, torch mlp)")
    print(f"local executor:           {local_seconds:7.1f} s ({local_cores:.2f} cores busy)")
    print(f"dask, {args.workers} workers:         {dask_seconds:7.1f} s ({dask_cores:.2f} cores "
          f"busy; the cluster started in {startup:.1f} s)")
    print(f"speed-up:                 {local_seconds / dask_seconds:7.2f}x")
    print(f"same cells stored:        {same}")


def _warm_up(config: ExperimentConfig, root: Path, cache: Path) -> None:
    """Run ``config`` once in this (worker) process: imports, model loading, numba."""
    import os

    run(config, root / f"warm_{os.getpid()}", progress=False, cache_dir=cache)


if __name__ == "__main__":
    main()
