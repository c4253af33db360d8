"""Reports rendered from the results store only: tables (md, csv, tex, html), figures (png, svg),
a self-contained report.html, comparisons of two runs and terminal summaries."""

from xaibench.report.browser import screenshot
from xaibench.report.compare import compare, format_comparison, summary_text
from xaibench.report.document import FORMATS, parse_formats, render, run_status_note
from xaibench.report.figures import explanation_figure, topk_figure
from xaibench.report.pairwise import agreement_table, parity_table
from xaibench.report.plots import agreement_figure, curves_figure, mprt_figure, runtime_figure
from xaibench.report.tables import (Results, failure_table, leaderboard, model_table,
                                    runtime_table, summary_table)

__all__ = ["FORMATS", "Results", "agreement_figure", "agreement_table", "compare",
           "curves_figure", "explanation_figure", "failure_table", "format_comparison",
           "leaderboard", "model_table", "mprt_figure", "parity_table", "parse_formats",
           "render", "run_status_note", "runtime_figure", "runtime_table", "screenshot",
           "summary_table", "summary_text", "topk_figure"]
