"""Full chaos run: 3 workers, kill -9 at random, print the figures as JSON.

    .venv/bin/python bench/chaos.py --datasets 30 --kills 50 --seed 2

Starts its own redis-server on a free port (tests/redis_server.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from redis_server import RedisServer  # noqa: E402

from tests.chaos.harness import run_chaos  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=30)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fraudpipe-chaos-") as tmp:
        with RedisServer(Path(tmp) / "redis") as server:
            figures = run_chaos(Path(tmp), server.url, datasets=args.datasets,
                                kills=args.kills, workers=args.workers, seed=args.seed,
                                timeout=args.timeout)
    print(json.dumps(figures.as_dict(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
