"""Spend budgets: rules, windows, the streaming evaluator and its persistent state.

The :class:`Evaluator` is a pipeline sink: it counts every priced call against every budget it
falls in (per scope instance and window, de-duplicated, exact) and publishes decision snapshots
(``otelcost.policy.decisions``) that the policy endpoint serves. See ``README.md`` here and
``docs/budgets.md``.
"""

from otelcost.budgets.admin import BudgetEntry
from otelcost.budgets.config import AlertsConfig, BudgetConfig, BudgetingConfig, ThresholdConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.budgets.overrides import Override, OverrideSpec

__all__ = [
    "AlertsConfig",
    "BudgetConfig",
    "BudgetEntry",
    "BudgetingConfig",
    "Evaluator",
    "Override",
    "OverrideSpec",
    "ThresholdConfig",
]
