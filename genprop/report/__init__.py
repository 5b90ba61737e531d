"""Evaluation and report: score GenProp and the baselines on benchmark cases, write metrics.json and report.html."""

from genprop.report.evaluation import (LABELS, MASK_METHODS, METHODS, METRICS, case_dirs, defined_metrics, load_case,
                                       run_methods, score, summarise)
from genprop.report.html import write_report

__all__ = ["LABELS", "MASK_METHODS", "METHODS", "METRICS", "case_dirs", "defined_metrics", "load_case", "run_methods",
           "score", "summarise", "write_report"]
