"""``python -m otelcost``: the same as the ``otelcost`` command."""

from otelcost.cli import main

main()
