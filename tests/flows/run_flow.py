"""Run one flow in a fresh process and print its result as JSON (for the kill / resume tests).

``python -m tests.flows.run_flow meta_evaluate '{"n_boot": 50}'``; the registry comes from the
``AUTORATER_*`` environment and the Prefect server from ``PREFECT_API_URL``."""

from __future__ import annotations

import json
import sys

if __name__ == "__main__":
    import flows

    result = getattr(flows, sys.argv[1])(**json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}"))
    print("RESULT " + json.dumps(result, default=str), flush=True)
