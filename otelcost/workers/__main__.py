"""``python -m otelcost.workers FD``: a receiver worker process (started by ``otelcost serve``)."""

import sys

from otelcost.workers.worker import main

sys.exit(main(sys.argv[1:]))
