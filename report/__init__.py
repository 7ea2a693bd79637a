"""Results people can look at: `dlx runs` listings (`list_runs`) and `dlx report` figures and pages
(`make_report`); the figure modules are imported only for the kind of folder being reported."""
from dlx.report.api import BUILDERS, as_json, builder, make_report
from dlx.report.figures import Figure, Report, Table
from dlx.report.runs import classify, list_runs

__all__ = ["BUILDERS", "Figure", "Report", "Table", "as_json", "builder", "classify", "list_runs", "make_report"]
