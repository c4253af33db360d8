"""Reports rendered from the results store only: tables (md, csv, tex, html) and figures."""

from xaibench.report.document import FORMATS, render
from xaibench.report.figures import explanation_figure
from xaibench.report.tables import Results, failure_table, model_table, summary_table

__all__ = ["FORMATS", "Results", "explanation_figure", "failure_table", "model_table", "render",
           "summary_table"]
