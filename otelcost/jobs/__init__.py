"""Jobs that run over the lake: they read partitions and publish rewrites of them.

``reprice``
    ``reprice`` re-runs the pricer over stored calls after a catalog correction
    (``otelcost pricing reprice``) and ``unknown_models`` lists the models no entry priced
    (``otelcost pricing unknown``).
``compact``
    ``compact_partition`` / ``compact_lake`` merge each day's small files into one
    (``otelcost lake compact``); ``Compactor`` runs that in the background of ``otelcost serve``.

This package sits above ``lake`` and ``pricing`` in the layer order: it uses both, and neither
knows of it. Nothing is re-exported here.
"""
