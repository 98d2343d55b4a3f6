"""``make bench``: run every benchmark under bench/ in turn (never part of the tests).

Each one prints its figures against a baseline measured in the same run and
rewrites its own section of docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["throughput.py", "chaos.py", "identity.py", "sentiment.py"]


def main() -> int:
    failed = []
    for name in BENCHES:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n=== {name} ===", flush=True)
        start = time.monotonic()
        rc = subprocess.call([sys.executable, str(path)])
        print(f"=== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.monotonic() - start:.0f}s ===",
              flush=True)
        if rc:
            failed.append(name)
    print("\nresults: docs/benchmarks.md" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
