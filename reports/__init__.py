"""clbench report: results folder -> index.md, self-contained index.html, figures, CSV and LaTeX.

Imports neither torch nor avalanche: only numpy, matplotlib (Agg, object API), the standard
library and benchmarks.results (metrics, store).

    python -m reports RESULTS_DIR [--out DIR]
"""

from reports.build import build_report, default_out_dir
from reports.runs import ReportError

__all__ = ["ReportError", "build_report", "default_out_dir"]
