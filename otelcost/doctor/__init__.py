"""``otelcost doctor``: check a running deployment and say what to fix.

A deployment is looked at from outside, the way an operator would: its ports (TCP connects), its
API (``/healthz``, ``/readyz``, ``/metrics``), and, when the data directory is visible from
where the doctor runs, its files (the spool's disk, the lake's newest file, the lake's rows of
the last hour, the price catalog of the configuration). Nothing is written except a temporary
file that proves the lake is writable. ``model.py`` holds the result types, ``probe.py`` the
network reads, ``checks.py`` one function per check, ``run.py`` the order they run in.
docs/operations.md describes every check and its fix.
"""

from otelcost.doctor.model import CheckResult, Limits, Status, Target, worst
from otelcost.doctor.run import run_checks

__all__ = ["CheckResult", "Limits", "Status", "Target", "run_checks", "worst"]
