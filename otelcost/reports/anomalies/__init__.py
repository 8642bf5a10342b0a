"""Cost anomaly detection: the ``anomalies`` report over the lake (``report.py``, its SQL in
``detectors.py``) and the live detectors inside ``otelcost serve`` (``streaming.py``)."""

from otelcost.reports.anomalies import report  # noqa: F401  (registers the anomalies report)
