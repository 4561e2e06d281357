"""Starts bqemulator (PyPI bqemulator, a BigQuery emulator on DuckDB) for Playlog's tests and compose stack.
Named start-bqemulator.py, not bqemulator.py: a script of the same name would shadow the package.

    python scripts/start-bqemulator.py start --rest-port 9050 --grpc-port 9060 --project test

Run it with the virtualenv scripts/install-deps.sh makes (~/.cache/playlog/bqemulator-1.4.0).
"""

import sys

import bqemulator.storage.engine as engine

# Offline, bqemulator's start-up download of DuckDB's spatial extension fails; Playlog never uses GEOGRAPHY.
engine.DuckDBEngine._load_spatial = lambda self, *args, **kwargs: None

from bqemulator.cli import main  # noqa: E402 (after the patch, on purpose)

if __name__ == "__main__":
    sys.argv = ["bqemulator"] + sys.argv[1:]
    sys.exit(main())
