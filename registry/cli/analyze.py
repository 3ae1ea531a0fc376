"""``autorater analyze``: why a judge fails and how far to trust it (issue "Trustworthy judge
analytics"). Each group of commands lives in its own module, which registers on :data:`app`:

* :mod:`registry.cli.analyze_ranks` — ``ranks``, ``protocols`` (ReIFE analyses);
* :mod:`registry.cli.analyze_jury` — ``jury`` (subset search of a jury under a cost budget);
* :mod:`registry.cli.analyze_selective` — ``selective`` (Trust or Escalate), ``ppi`` (PPI++);
* :mod:`registry.cli.analyze_robustness` — ``robustness`` (accuracy drop on perturbation probes).
"""

from __future__ import annotations

from registry.cli.common import new_app

app = new_app("Analyses of judges: rank stability, protocols, juries, selective evaluation with a "
              "guarantee, prediction-powered estimates, robustness to perturbations.")

# the command modules register on ``app`` when imported (after ``app`` exists)
from registry.cli import analyze_jury, analyze_ranks, analyze_robustness, analyze_selective  # noqa: E402,F401
