"""Experiments: TOML config -> plan of keyed cells -> runner -> SQLite results store."""

from xaibench.experiment.config import ExperimentConfig, load_config, parse_config
from xaibench.experiment.plan import Cell, ModelPlan, Plan, make_plan
from xaibench.experiment.runner import RunSummary, run
from xaibench.experiment.store import CellRecord, MetricRow, ModelRecord, Store

__all__ = ["Cell", "CellRecord", "ExperimentConfig", "MetricRow", "ModelPlan", "ModelRecord",
           "Plan", "RunSummary", "Store", "load_config", "make_plan", "parse_config", "run"]
