"""`fraudpipe serve`: an HTTP service scoring each transaction as it happens."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, date_arg, share_of

DESCRIPTION = """\
Score transactions one by one (POST /v1/score, one JSON object in the share's mapped
columns) or in batches (POST /v1/score/batch: JSON lines, an Arrow IPC stream or
Parquet) with the chain's head checkpoint, verified against the lineage's sha256. A
transaction's features are the arrival path's: its card's and terminal's history on the
share plus the day's earlier transactions seen by the service, so its score equals what
`fraudpipe score` gives its row once the day arrives as a file, with the same
checkpoint. A new head is loaded without a pause (a checkpoint that fails verification
is refused and the old one kept). GET /healthz, /readyz, /metrics (Prometheus).

Columns: the mapping of --mapping FILE, else ROOT/fraudpipe-mapping.json, else the one
the share's latest ingest recorded, else the simulator's names.
Windows of the day: in this process (a restart mid-day forgets the day's transactions
seen so far), or with --redis-url shared by several replicas in Redis (nothing lost).
"""


def add_parser(sub) -> None:
    """Register `fraudpipe serve` on the CLI."""
    parser = command_parser(
        sub, run, "serve", help="score each transaction as it happens (HTTP service)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, loopback only; 0.0.0.0 "
                             "in a pod)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--mapping", metavar="FILE",
                        help="column mapping file (default: see above)")
    parser.add_argument("--redis-url", metavar="URL",
                        help="share the day's windows between replicas through this Redis "
                             "(redis[s]://...; env FRAUDPIPE_REDIS_URL or FRAUDPIPE_REDIS_* "
                             "with --shared); keys <prefix>:serve:*, apart from the queue's")
    parser.add_argument("--shared", action="store_true",
                        help="use the Redis of the FRAUDPIPE_REDIS_* environment (as the "
                             "worker does) for the day's windows")
    parser.add_argument("--clock", choices=("wall", "replay"), default="wall",
                        help="what sets the serving day: wall, today in the share's time zone, "
                             "rolled at its midnight; replay, a later transaction's day "
                             "(replaying recorded days). default wall")
    parser.add_argument("--today", type=date_arg, metavar="YYYY-MM-DD",
                        help="first serving day (default: today; with --clock replay, the "
                             "head's day + 1)")
    parser.add_argument("--lateness", type=float, default=0.0, metavar="SECONDS",
                        help="accept a transaction this much older than the day's latest "
                             "accepted one (default 0: in order; an accepted late one is "
                             "missing from the windows of the later ones already answered)")
    parser.add_argument("--prepare-ahead", type=float, default=900.0, metavar="SECONDS",
                        help="prepare the next day's history this long before midnight "
                             "(the clock's; with --clock replay, the latest transaction's; "
                             "default 900); it is then held beside the day's own")
    parser.add_argument("--reload-interval", type=float, default=2.0, metavar="SECONDS",
                        help="how often to look for a new head (default 2)")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    # A service: its log lines (each lease, each reload) are what it prints.
    parser.set_defaults(logs_are_output=True)


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe serve` until interrupted; return the exit status."""
    import uvicorn

    from trainer.serving.app import create_app
    from trainer.serving.intraday import Intraday, MemoryIntraday, RedisIntraday
    from trainer.serving.scorer import Scorer, ServeConfig
    from trainer.serving.share_mapping import serving_mapping

    share = share_of(args)
    config = ServeConfig(mapping=serving_mapping(share, args.mapping), clock=args.clock,
                         today=args.today, lateness_seconds=args.lateness,
                         reload_seconds=args.reload_interval,
                         prepare_ahead_seconds=args.prepare_ahead, freeze_gc=True)
    intraday: Intraday
    if args.redis_url or args.shared:
        from trainer.queue.settings import RedisSettings

        settings = RedisSettings.from_env(args.redis_url)
        intraday = RedisIntraday(settings.client(), settings.key_prefix)
    else:
        intraday = MemoryIntraday()
    app = create_app(Scorer(share, config, intraday))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False)
    return 0
