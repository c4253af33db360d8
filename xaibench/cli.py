"""The ``xaibench`` command line.

    xaibench list                          registered backends, models, datasets, explainers ...
    xaibench data fetch fashion-mnist      download (and verify) a dataset
    xaibench data example-folder DEST      write an example class-per-subfolder image folder
    xaibench validate CONFIG               check an experiment file, run nothing
    xaibench run CONFIG [--output DIR] [--replace]   run (or resume) an experiment
        [--executor dask --workers N | --scheduler tcp://HOST:PORT] [--cell-timeout S]
    xaibench status RESULTS_DIR            cells done / failed / pending, and the failures
    xaibench report RESULTS_DIR [--format md,csv,html] [--screenshot PNG]
    xaibench compare RESULTS_A RESULTS_B   leaderboards of two runs side by side
    xaibench explain IMAGE --results DIR [--model M] [--explainer E] [--masker S]
        [--param K=V ...] [--top-k K] [--figure PNG]   explain one image file with a run's model
    xaibench explain IMAGE --checkpoint FILE [--backend B] [--model ARCH|module:Class]
        [--arch-param K=V ...] [--dataset D | --classes a,b,.. --input-shape HxWxC]
        [--background DIR|blank] ...               the same with a checkpoint file's weights

Exit status: 0 done; 1 a run in which some cells failed; 2 an error, printed as one line
``xaibench: error: ...`` (an unexpected exception too, with a hint to ``--debug``, which shows
the traceback); 130 interrupted by Ctrl-C, 143 by SIGTERM (finished cells stay stored).
Heavy modules are imported only by the commands that need them, so ``--help`` and ``list``
stay fast.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from xaibench import __version__, registry
from xaibench.errors import ConfigError, TerminatedError, XaibenchError

_RESUME = "finished cells are stored; run again to resume"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return args.command(args)
    except TerminatedError:
        print(f"xaibench: terminated by SIGTERM ({_RESUME})", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"xaibench: interrupted ({_RESUME})", file=sys.stderr)
        return 130
    except XaibenchError as exc:
        if debug:
            traceback.print_exc()
        _error(str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless --debug
        if debug:
            raise
        _error(f"unexpected {traceback.format_exception_only(exc)[-1].strip()} "
               f"(run with --debug for the traceback)")
        return 2


def _error(message: str) -> None:
    """Print ``message`` as the one line ``xaibench: error: ...``."""
    print("xaibench: error: " + " ".join(line.strip() for line in message.splitlines()),
          file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)  # --debug before or after the command
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    parser = argparse.ArgumentParser(
        prog="xaibench", parents=[debug], description="Compare SHAP explainers and maskers "
                                                       "across PyTorch, Keras and JAX/Flax.")
    parser.add_argument("--version", action="version", version=f"xaibench {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = functools.partial(commands.add_parser, parents=[debug])

    listing = add("list", help="list registered names and their availability")
    listing.set_defaults(command=_list)

    data = add("data", help="dataset files")
    data_commands = data.add_subparsers(metavar="ACTION", required=True)
    fetch = data_commands.add_parser("fetch", parents=[debug],
                                     help="download and verify a dataset's files")
    fetch.add_argument("dataset", help="dataset name, e.g. fashion-mnist")
    fetch.add_argument("--dest", type=Path, help="folder to download into "
                                                 "(default: the dataset's own choice)")
    fetch.set_defaults(command=_fetch)
    example = data_commands.add_parser(
        "example-folder", parents=[debug],
        help="write an example image folder (one class per subfolder) to try image_folder on")
    example.add_argument("dest", type=Path, help="folder to write the class subfolders into")
    example.add_argument("--size", type=int, default=224, help="image height and width "
                                                               "(default 224)")
    example.add_argument("--classes", type=int, default=10, help="classes (2-10, default 10)")
    example.add_argument("--per-class", type=int, default=12, help="images per class "
                                                                   "(default 12)")
    example.set_defaults(command=_example_folder)

    validate = add("validate", help="check an experiment file without running")
    validate.add_argument("config", type=Path, help="experiment TOML file")
    validate.set_defaults(command=_validate)

    run = add("run", help="run or resume an experiment")
    run.add_argument("config", type=Path, help="experiment TOML file")
    run.add_argument("--output", type=Path, help="results directory (overrides the config)")
    run.add_argument("--replace", action="store_true",
                     help="discard the results the directory holds (of another configuration "
                          "or data) and run afresh")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="where cells are computed: in this process (default) or on Dask")
    run.add_argument("--workers", type=int, metavar="N",
                     help="dask: start a local cluster of N worker processes (default 1)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="dask: join the cluster of this scheduler instead")
    run.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                     help="fail a cell that runs longer (default: no limit)")
    run.add_argument("--retries", type=int, default=2, metavar="N",
                     help="dask: reruns of a task whose worker process died (default 2)")
    run.set_defaults(command=_run)

    status = add("status", help="count the done, failed and pending cells of a results store")
    status.add_argument("results_dir", type=Path, help="results directory of a run")
    status.set_defaults(command=_status)

    report = add("report", help="render tables and figures from a results store")
    report.add_argument("results_dir", type=Path, help="results directory of a run")
    report.add_argument("--format", default="md,csv,html",
                        help="comma-separated formats: md, csv, tex, html (default: md,csv,html)")
    report.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="also save a screenshot of report.html taken in headless Chromium")
    report.set_defaults(command=_report)

    compare = add("compare", help="diff the leaderboards of two runs")
    compare.add_argument("results_a", type=Path, help="results directory of run a")
    compare.add_argument("results_b", type=Path, help="results directory of run b")
    compare.set_defaults(command=_compare)

    explain = add("explain", help="explain one image file with a model of a run or a "
                                  "checkpoint file")
    explain.add_argument("image", type=Path, help="PNG or JPEG file (any size and mode)")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", type=Path, metavar="DIR",
                        help="results directory of the run whose model explains the image")
    source.add_argument("--checkpoint", type=Path, metavar="FILE",
                        help="saved weights (a cached <key>.ckpt, whose .json sidecar tells the "
                             "rest; a torch state_dict, TorchScript, .keras, flax msgpack)")
    explain.add_argument("--model", help="with --results: model key (or prefix), "
                                         "backend:architecture or a user model's name (needed "
                                         "when the run has several); with --checkpoint: a zoo "
                                         "architecture or module:Class of your own model")
    checkpoint = explain.add_argument_group(
        "with --checkpoint", "what the file does not say itself (a cached checkpoint's sidecar "
                             "gives backend, model, params and dataset)")
    checkpoint.add_argument("--backend", help="framework of the checkpoint: torch, keras, flax")
    checkpoint.add_argument("--arch-param", action="append", default=None, metavar="KEY=VALUE",
                            help="architecture (or your model's) parameter, repeatable")
    checkpoint.add_argument("--dataset", help="dataset the model was trained on: input shape, "
                                              "class names and background images")
    checkpoint.add_argument("--classes", help="comma-separated class names, in label order "
                                              "(instead of --dataset, with --input-shape)")
    checkpoint.add_argument("--input-shape", metavar="HxWxC", help="model input, e.g. 32x32x3")
    checkpoint.add_argument("--background", metavar="DIR|blank",
                            help="deep/gradient background: a folder of images like the "
                                 "training data, or 'blank' (one black image); default: "
                                 "--dataset's training images, else blank with a warning")
    checkpoint.add_argument("--n-background", type=int, default=50, metavar="N",
                            help="background images drawn from the folder or dataset (50)")
    explain.add_argument("--explainer", default="deep", help="explainer name (default: deep)")
    explain.add_argument("--masker", help="masker spec for explainers taking one, e.g. blur(8,8)")
    explain.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                         help="explainer parameter (TOML value), repeatable")
    explain.add_argument("--top-k", type=int, default=3, help="classes explained (default 3)")
    explain.add_argument("--figure", type=Path, metavar="PNG",
                         help="figure path (default: <image name>.explained.png beside it)")
    explain.set_defaults(command=_explain)
    return parser


def _shape(text: str) -> tuple[int, int, int]:
    """'32x32x3' as (32, 32, 3); ConfigError otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise ConfigError(f"--input-shape {text!r}: write HxWxC with positive integers, "
                          f"e.g. 32x32x3")
    return tuple(int(part) for part in parts)  # type: ignore[return-value]


def _list(args: argparse.Namespace) -> int:
    width = max(len(name) for reg in registry.ALL.values() for name in reg) + 2
    for kind, reg in registry.ALL.items():
        print(f"{kind}s:")
        for entry in reg.entries():
            if reg is registry.models:
                status = f"[backends: {', '.join(reg.get(entry.name).frameworks)}]"
            elif entry.framework is None:
                status = ""
            elif entry.available:
                status = f"[{entry.framework}: installed]"
            else:
                status = f"[{entry.framework}: not installed]"
            print(f"  {entry.name:<{width}}{entry.description} {status}".rstrip())
    return 0


def _fetch(args: argparse.Namespace) -> int:
    name = args.dataset.replace("-", "_")
    module_name = registry.datasets.entry(name).target.partition(":")[0]
    fetch = getattr(importlib.import_module(module_name), "fetch", None)
    if fetch is None:
        raise ConfigError(f"dataset '{name}' has no files to fetch")
    print(f"{name}: files ready in {fetch(args.dest)}")
    return 0


def _example_folder(args: argparse.Namespace) -> int:
    from xaibench.data import example_folder

    root = example_folder.write(args.dest, n_classes=args.classes, per_class=args.per_class,
                                size=args.size)
    print(f"example folder: {args.classes} classes x {args.per_class} images of "
          f"{args.size}x{args.size} in {root}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from xaibench.experiment import load_config, make_plan

    config = load_config(args.config)
    plan = make_plan(config)
    print(f"{args.config}: valid — {len(plan.models)} model(s), {len(plan.cells)} cell(s), "
          f"output {config.output}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from xaibench.experiment import load_config, run
    from xaibench.experiment.executors import make_executor

    from xaibench.report import summary_text

    executor = make_executor(args.executor, workers=args.workers, scheduler=args.scheduler,
                             cell_timeout=args.cell_timeout, retries=args.retries)
    summary = run(load_config(args.config), args.output, progress=not args.no_progress,
                  replace=args.replace, executor=executor)
    print(summary_text(summary.output))
    print(summary)
    for label, error in summary.failures:
        print(f"  failed {label}: {error}")
    return 1 if summary.failures else 0


def _status(args: argparse.Namespace) -> int:
    from xaibench.experiment.store import Store, require_store

    require_store(args.results_dir)
    progress = Store(args.results_dir).progress()
    pending = "unknown" if progress.pending is None else progress.pending
    print(f"{args.results_dir}: run {progress.run_status}; {progress.done} done, "
          f"{len(progress.failures)} failed, {pending} pending"
          + (f" (of {progress.planned} cells)" if progress.planned is not None else ""))
    if progress.planned:
        width = 40
        filled = round(width * progress.done / progress.planned)
        print(f"[{'#' * filled}{'.' * (width - filled)}] "
              f"{100 * progress.done / progress.planned:.0f}% done")
    for label, error in progress.failures:
        print(f"  failed {label}: {error}")
    _note_unfinished(args.results_dir)
    return 0


def _report(args: argparse.Namespace) -> int:
    from xaibench import report
    from xaibench.experiment.store import require_store

    formats = report.parse_formats(args.format)
    if args.screenshot and "html" not in formats:
        raise ConfigError(f"--screenshot needs the html format; add html to --format "
                          f"{args.format}")
    require_store(args.results_dir)
    _note_unfinished(args.results_dir)
    for path in report.render(args.results_dir, formats=formats):
        print(path)
    if args.screenshot:
        shot = report.screenshot(args.results_dir / "report.html", args.screenshot)
        print(f"screenshot: {shot}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from xaibench.experiment.store import require_store
    from xaibench.report import compare, format_comparison

    for results_dir in (args.results_a, args.results_b):
        require_store(results_dir)
    print(format_comparison(compare(args.results_a, args.results_b)))
    return 0


def _explain(args: argparse.Namespace) -> int:
    import tomllib

    import numpy as np

    from xaibench.experiment.single_image import explain_checkpoint, explain_image
    from xaibench.report.figures import image_figure

    def key_values(items: list[str], flag: str) -> dict[str, Any]:
        values = {}
        for item in items:
            key, _, value = item.partition("=")
            try:
                values[key.strip()] = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"{flag} {item!r}: write KEY=VALUE with a TOML value, e.g. "
                                  f"{flag} max_evals=500 or {flag} layer='conv2'") from None
        return values

    params = key_values(args.param, "--param")
    checkpoint_flags = {"--backend": args.backend, "--arch-param": args.arch_param,
                        "--dataset": args.dataset, "--classes": args.classes,
                        "--input-shape": args.input_shape, "--background": args.background}
    common = {"explainer": args.explainer, "masker": args.masker, "params": params,
              "top_k": args.top_k}
    if args.results is not None:
        given = [flag for flag, value in checkpoint_flags.items() if value]
        if given:
            raise ConfigError(f"{', '.join(given)} apply to --checkpoint only: a run's model "
                              f"brings its own; drop them")
        result = explain_image(args.image, args.results, model=args.model, **common)
    else:
        result = explain_checkpoint(
            args.image, args.checkpoint, model=args.model, backend=args.backend,
            arch_params=None if args.arch_param is None else key_values(args.arch_param,
                                                                        "--arch-param"),
            dataset=args.dataset, n_background=args.n_background, background=args.background,
            class_names=None if args.classes is None else
            [name.strip() for name in args.classes.split(",")],
            input_shape=None if args.input_shape is None else _shape(args.input_shape),
            **common)
    print(f"{args.image}: {result.model_label}, {args.explainer}"
          + (f" ({args.masker})" if args.masker else ""))
    for rank, (name, probability) in enumerate(result.top_k(), start=1):
        print(f"  {rank}. {name:<20} {probability:.4f}")
    if result.background:
        print(f"background: {result.background}")
    if result.background_warning:
        print(f"xaibench: warning: {result.background_warning}", file=sys.stderr)
    figure = args.figure or args.image.with_name(f"{args.image.stem}.explained.png")
    heatmaps = np.moveaxis(result.attribution.values[0].sum(axis=2), -1, 0)
    image_figure(result.image, heatmaps, [f"{n} ({p:.3f})" for n, p in result.top_k()],
                 f"{args.image.name}: {args.explainer}, {result.model_label}", figure)
    print(f"figure: {figure}")
    return 0


def _note_unfinished(results_dir: Path) -> None:
    """Say on stderr when the store's last run is still running or was interrupted."""
    from xaibench.experiment.store import Store
    from xaibench.report import run_status_note

    note = run_status_note(Store(results_dir))
    if note:
        print(f"xaibench: note: {note}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
