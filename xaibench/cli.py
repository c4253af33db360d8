"""The ``xaibench`` command line.

    xaibench list                          registered backends, models, datasets, explainers ...
    xaibench data fetch fashion-mnist      download (and verify) a dataset
    xaibench validate CONFIG               check an experiment file, run nothing
    xaibench run CONFIG [--output DIR]     run (or resume) an experiment
    xaibench report RESULTS_DIR [--format md,csv,html] [--screenshot PNG]
    xaibench compare RESULTS_A RESULTS_B   leaderboards of two runs side by side

Errors raised on purpose (XaibenchError) print one line and exit with status 2; a run in which
some cells failed exits with status 1. Heavy modules are imported only by the commands that
need them, so ``--help`` and ``list`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

from xaibench import __version__, registry
from xaibench.errors import ConfigError, XaibenchError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except XaibenchError as exc:
        print(f"xaibench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xaibench: interrupted (finished cells are stored; run again to resume)",
              file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xaibench", description="Compare SHAP explainers and maskers across PyTorch, "
                                     "Keras and JAX/Flax.")
    parser.add_argument("--version", action="version", version=f"xaibench {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list registered names and their availability")
    listing.set_defaults(command=_list)

    data = commands.add_parser("data", help="dataset files")
    data_commands = data.add_subparsers(metavar="ACTION", required=True)
    fetch = data_commands.add_parser("fetch", help="download and verify a dataset's files")
    fetch.add_argument("dataset", help="dataset name, e.g. fashion-mnist")
    fetch.add_argument("--dest", type=Path, help="folder to download into "
                                                 "(default: the dataset's own choice)")
    fetch.set_defaults(command=_fetch)

    validate = commands.add_parser("validate", help="check an experiment file without running")
    validate.add_argument("config", type=Path, help="experiment TOML file")
    validate.set_defaults(command=_validate)

    run = commands.add_parser("run", help="run or resume an experiment")
    run.add_argument("config", type=Path, help="experiment TOML file")
    run.add_argument("--output", type=Path, help="results directory (overrides the config)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(command=_run)

    report = commands.add_parser("report", help="render tables and figures from a results store")
    report.add_argument("results_dir", type=Path, help="results directory of a run")
    report.add_argument("--format", default="md,csv,html",
                        help="comma-separated formats: md, csv, tex, html (default: md,csv,html)")
    report.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="also save a screenshot of report.html taken in headless Chromium")
    report.set_defaults(command=_report)

    compare = commands.add_parser("compare", help="diff the leaderboards of two runs")
    compare.add_argument("results_a", type=Path, help="results directory of run a")
    compare.add_argument("results_b", type=Path, help="results directory of run b")
    compare.set_defaults(command=_compare)
    return parser


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


def _validate(args: argparse.Namespace) -> int:
    from xaibench.experiment import load_config, make_plan

    config = load_config(args.config)
    plan = make_plan(config)
    print(f"{args.config}: valid — {len(plan.models)} model(s), {len(plan.cells)} cell(s), "
          f"output {config.output}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from xaibench.experiment import load_config, run

    from xaibench.report import summary_text

    summary = run(load_config(args.config), args.output, progress=not args.no_progress)
    print(summary_text(summary.output))
    print(summary)
    for label, error in summary.failures:
        print(f"  failed {label}: {error}")
    return 1 if summary.failures else 0


def _report(args: argparse.Namespace) -> int:
    from xaibench import report

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    _require_store(args.results_dir)
    for path in report.render(args.results_dir, formats=formats):
        print(path)
    if args.screenshot:
        html = args.results_dir / "report.html"
        if "html" not in formats:
            raise ConfigError("--screenshot needs the html format")
        print(f"screenshot: {report.screenshot(html, args.screenshot)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from xaibench.report import compare, format_comparison

    for results_dir in (args.results_a, args.results_b):
        _require_store(results_dir)
    print(format_comparison(compare(args.results_a, args.results_b)))
    return 0


def _require_store(results_dir: Path) -> None:
    if not (results_dir / "store.sqlite").is_file():
        raise ConfigError(f"{results_dir} holds no results store (store.sqlite); "
                          f"run `xaibench run CONFIG --output {results_dir}` first")


if __name__ == "__main__":
    sys.exit(main())
