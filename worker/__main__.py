"""``python -m worker`` runs a worker; ``python -m worker <command>`` is the ``jobq`` CLI."""

import sys

from worker.cli import main

if __name__ == "__main__":
    main(sys.argv[1:] or ["worker"])
