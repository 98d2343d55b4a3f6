"""The ``omnivue`` command line."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .cli_types import non_negative_float as _non_negative_float
from .cli_types import share
from .cli_types import positive_int as _positive
from .config import DEFAULT_BATCH_SIZE

log = logging.getLogger("omnivue")


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one readable line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _setup_logging(verbose: bool, settings: Any | None = None) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings is not None:
        try:
            settings.logs_dir.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(settings.logs_dir / "omnivue.log"))
        except OSError:
            pass
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    for noisy in ("urllib3", "filelock", "asyncio", "soda"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)
    # kafka-python logs every reconnect attempt; omnivue reports what failed in its own words
    logging.getLogger("kafka").setLevel(logging.CRITICAL if not verbose else logging.INFO)


# --- commands ---------------------------------------------------------------------------

def cmd_broker(args: argparse.Namespace) -> int:
    from . import broker
    from .config import load_settings

    settings = load_settings()
    try:
        if args.action == "start":
            st = broker.start(settings)
            print(f"broker running on {st.address} (pid {st.pid or 'external'}); topics: "
                  + ", ".join(f"{t}[{n}]" for t, n in sorted(st.topics.items())))
        elif args.action == "stop":
            print("broker stopped" if broker.stop(settings) else "no broker started by omnivue is running")
        else:
            st = broker.status(settings)
            if not st.running:
                print(f"broker not running at {st.address}")
                return 3
            print(f"broker running on {st.address} (pid {st.pid or 'not started by omnivue'}); topics: "
                  + ", ".join(f"{t}[{n}]" for t, n in sorted(st.topics.items())))
    except broker.BrokerError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .simulator import Simulation, publish, write_truth

    settings = load_settings()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    sim = Simulation(args.people, args.days, seed=seed, bad_rate=args.bad_rate, dup_rate=args.dup_rate)
    result = sim.build()
    if args.crisis:
        from .crisis import apply_crisis

        result = apply_crisis(result, n_posts=args.crisis_posts)
    truth_path = Path(args.truth) if args.truth else settings.truth_file
    write_truth(truth_path, result.truth)
    sent = publish(settings, result, progress=not args.quiet)
    t = result.truth
    print(f"simulated {args.people} people over {args.days} days (seed {seed}): {sent} records published "
          f"({t['valid_events']} events, {len(t['duplicates'])} duplicate deliveries, "
          f"{len(t['bad_records'])} malformed), {len(t['violations'])} of {t['marketing_sends']} marketing sends "
          f"break consent; truth in {truth_path}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .ingester import Ingester

    settings = load_settings()
    ingester = Ingester(settings, group_id=args.group, batch_size=args.batch_size)
    stats = ingester.run(until_caught_up=args.until_caught_up, max_seconds=args.max_seconds,
                         progress=not args.quiet)
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
    else:
        print(f"landed {stats.landed} events, dead-lettered {stats.dead} records in {stats.seconds:.1f}s"
              + (f" (skipped {stats.skipped} already landed)" if stats.skipped else ""))
        if stats.reasons:
            print("dead letters by reason: " + ", ".join(f"{k}={v}" for k, v in stats.reasons.most_common()))
        print("lag per topic: " + (", ".join(f"{t}={n}" for t, n in sorted(stats.lag.items())) or "none"))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .kafka_io import wait_for_broker
    from .pipeline import run_pipeline
    from .summary import collect, render

    settings = load_settings()
    wait_for_broker(settings, timeout_s=5)  # a clear one-line error instead of a failed ingest task
    outcome = run_pipeline(settings, verbose=args.verbose, full_refresh=args.full_refresh)
    print(outcome.render())
    print(render(settings, collect(settings, run_id=outcome.run_id, since=outcome.started_at), ok=outcome.ok))
    return 0 if outcome.ok else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .contract_checks import missing_datasets, verify_all

    settings = load_settings()
    missing = missing_datasets(settings)
    if missing:
        raise UserError(f"nothing to verify yet: the warehouse {settings.warehouse} has no {', '.join(missing[:4])}"
                        f"{f' (+{len(missing) - 4} more)' if len(missing) > 4 else ''}; `omnivue run` builds them")
    report = verify_all(settings, run_id=args.run_id)
    print(report.render())
    return 0 if report.ok else 1


def cmd_publish(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .publish import blocking_failures_of_latest_verification, build_after_latest_verification, publish_snapshot

    settings = load_settings()
    if not settings.warehouse.exists():
        raise UserError(f"nothing to publish yet: {settings.warehouse} does not exist; `omnivue run` builds, "
                        "verifies and publishes it")
    # write, audit, publish: only marts whose latest verification passed every blocking check
    run_id, failed = blocking_failures_of_latest_verification(settings)
    if run_id is None:
        raise UserError("no contract verification recorded yet: run `omnivue verify` (or `omnivue run`) first")
    if failed:
        raise UserError(f"publish blocked: the latest contract verification ({run_id}), or a dbt build since, failed "
                        f"{len(failed)} blocking check(s): {'; '.join(failed[:5])}"
                        f"{f' (+{len(failed) - 5} more)' if len(failed) > 5 else ''}; the previous snapshot "
                        "is unchanged; fix them and run `omnivue verify` again")
    unverified = build_after_latest_verification(settings)
    if unverified:
        raise UserError(f"publish blocked: the marts were rebuilt (dbt build of {unverified[0]}) after the latest "
                        f"contract verification ({run_id}, {unverified[1]}), so no contract has checked them (a run "
                        "stopped before its verification ended?); the previous snapshot is unchanged; run "
                        "`omnivue verify`, then `omnivue publish` (or `omnivue run`)")
    path = publish_snapshot(settings)
    print(f"published {path}")
    return 0


def cmd_deadletter(args: argparse.Namespace) -> int:
    from . import deadletters
    from .config import load_settings

    settings = load_settings()
    if args.action == "list":
        print(deadletters.render_summary(deadletters.summary(settings, limit=args.limit)))
    elif args.action == "show":
        if not args.place:
            raise UserError("deadletter show needs TOPIC:PARTITION:OFFSET (see `omnivue deadletter list`)")
        try:
            row = deadletters.show(settings, *deadletters.parse_place(args.place))
        except (ValueError, LookupError) as exc:
            raise UserError(str(exc)) from None
        for key in ("topic", "partition", "offset", "record_key", "received_at", "reason"):
            print(f"{key + ':':<13}{row[key]}")
        print(f"raw:\n{row['raw']}")
    else:
        result = deadletters.replay(settings, reason_code=args.reason, dry_run=args.dry_run)
        print(result.render())
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .query import run_query

    settings = load_settings()
    print(run_query(settings, args.sql, warehouse=args.warehouse, limit=args.limit))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(people=args.people, days=args.days, seed=args.seed, verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="omnivue", description="omnivue: consent-aware unified customer view from Kafka events. "
                "Settings: OMNIVUE_HOME (data directory, default ./.omnivue), OMNIVUE_KAFKA_BOOTSTRAP "
                "(default 127.0.0.1:9092).")
    p.add_argument("--version", action="version", version=f"omnivue {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    b = sub.add_parser("broker", help="start, stop or inspect the local Kafka-protocol broker (Tansu)",
                       description="Run the local broker on the loopback address of OMNIVUE_KAFKA_BOOTSTRAP, "
                       "with its log and pid under $OMNIVUE_HOME/broker, and create the topics.")
    b.add_argument("action", choices=["start", "stop", "status"], help="what to do")
    b.set_defaults(func=cmd_broker)

    s = sub.add_parser("simulate", help="publish realistic multi-channel traffic and write its ground truth",
                       description="Publish N people's events over D days on every topic, with consent changes, "
                       "planted consent violations, malformed records and duplicate deliveries; write the ground "
                       "truth to $OMNIVUE_HOME/truth.json.")
    s.add_argument("--people", type=_positive, required=True, help="how many people")
    s.add_argument("--days", type=_positive, default=30, help="days of history ending now (default 30)")
    s.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one)")
    s.add_argument("--bad-rate", type=share, default=0.02, help="share of malformed records")
    s.add_argument("--dup-rate", type=share, default=0.03, help="share of duplicate deliveries")
    s.add_argument("--crisis", action="store_true", help="plant a burst of negative mentions (an e-reputation "
                   "crisis) 2 hours before the end; its start goes to the truth file")
    s.add_argument("--crisis-posts", type=_positive, default=60, help="negative posts in the crisis (default 60)")
    s.add_argument("--truth", help="where to write the truth JSON (default $OMNIVUE_HOME/truth.json)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("ingest", help="consume the topics into the warehouse (landed_events, dead_letter)",
                       description="Consume every input topic with a consumer group, validate each record "
                       "against contracts/events/, land valid events and dead-letter the rest, exactly once.")
    i.add_argument("--until-caught-up", action="store_true", help="stop when the group has no lag "
                   "(default: keep following)")
    i.add_argument("--group", help="consumer group (default OMNIVUE_CONSUMER_GROUP or omnivue-ingest)")
    i.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE,
                   help=f"records per landing transaction (default {DEFAULT_BATCH_SIZE})")
    i.add_argument("--max-seconds", type=_non_negative_float, default=None, help="stop after this long "
                   "(with --until-caught-up: fail if not caught up by then)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i.set_defaults(func=cmd_ingest)

    r = sub.add_parser("run", help="run the customer_view pipeline once (Airflow DAG, in process)",
                       description="One run of the Airflow DAG customer_view without a server: ingest until "
                       "caught up, dbt models as tasks, Soda contracts, publish. Exits 1 when the run fails.")
    r.add_argument("--full-refresh", action="store_true",
                   help="rebuild every dbt model from all landed events instead of incrementally (after "
                   "changing the identity blocklist, limits or priorities, or a model's logic); the identity "
                   "history and the event log keep their rows")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("verify", help="verify the Soda contracts against the warehouse",
                       description="Verify every contract under contracts/ and append the results to "
                       "contract_results. Exits 1 when a blocking check fails.")
    v.add_argument("--run-id", default=None, help="run id to record (default: a new one)")
    v.set_defaults(func=cmd_verify)

    pb = sub.add_parser("publish", help="copy the marts into the analysts' read-only snapshot",
                        description="Copy the verified marts into $OMNIVUE_HOME/published/customer_view.duckdb, "
                        "replaced atomically.")
    pb.set_defaults(func=cmd_publish)

    dl = sub.add_parser("deadletter", help="list, show or replay dead letters",
                        description="list: dead letters grouped by reason and the most recent ones; "
                        "show TOPIC:PARTITION:OFFSET: one whole; replay: re-validate against the current contracts "
                        "and land what now passes (once).")
    dl.add_argument("action", choices=["list", "show", "replay"], help="what to do")
    dl.add_argument("place", nargs="?", help="with show: TOPIC:PARTITION:OFFSET")
    dl.add_argument("--limit", type=_positive, default=20, help="with list: recent rows to print (default 20)")
    dl.add_argument("--reason", help="with replay: only dead letters with this reason code (e.g. schema)")
    dl.add_argument("--dry-run", action="store_true", help="with replay: count, change nothing")
    dl.set_defaults(func=cmd_deadletter)

    from . import webhook  # light import: adapters, Kafka and DuckDB load on first use

    webhook.add_arguments(sub.add_parser(
        "webhook", help="receive provider webhooks (SendGrid, X, Segment, ...) and publish canonical events",
        description="HTTP receiver on localhost: POST /webhooks/<provider>; valid items are published to Kafka "
        "as canonical events, bad payloads get a 4xx with a reason and are dead-lettered."))

    from . import backfill  # light import: adapters, Kafka and DuckDB load on first use

    backfill.add_arguments(sub.add_parser(
        "backfill", help="publish history from files (canonical JSON Lines, or provider exports with --provider)"))

    from .compliance import cli as compliance_cli

    au = sub.add_parser("audit", help="consent audit: acknowledge violations, HTML report for compliance",
                        description="ack EVENT_ID --by NAME --why TEXT: acknowledge a violation (it stops "
                        "alerting, never leaves the audit); report [--out FILE]: self-contained HTML report.")
    compliance_cli.add_audit_arguments(au)
    au.set_defaults(func=compliance_cli.run_audit)
    sj = sub.add_parser("subject", help="data subject requests: export (access), erase, queue, serve, list",
                        description="Right of access and right to erasure for one person, found from any of "
                        "their identifiers (--email, --phone, --customer-id, --device-id, --anonymous-id, "
                        "--social-handle).")
    compliance_cli.add_subject_arguments(sj)
    sj.set_defaults(func=compliance_cli.run_subject)

    from .surge import add_alerts_command

    add_alerts_command(sub)  # omnivue alerts tail | watch

    q = sub.add_parser("query", help="run SQL on the published snapshot (read-only)",
                       description="Run one SQL statement on $OMNIVUE_HOME/published/customer_view.duckdb, "
                       "opened read-only (safe while the pipeline runs), and print the result as a table.")
    q.add_argument("sql", help="the SQL to run, e.g. \"select * from customer_360 limit 5\"")
    q.add_argument("--warehouse", action="store_true", help="query the warehouse instead (data engineers; "
                   "waits while the pipeline writes)")
    q.add_argument("--limit", type=_positive, default=50, help="rows to print at most (default 50)")
    q.set_defaults(func=cmd_query)

    d = sub.add_parser("demo", help="start the broker, simulate, run the pipeline, print a summary",
                       description="The whole flow on the embedded defaults: local broker, DuckDB files, "
                       "Airflow without a server.")
    d.add_argument("--people", type=_positive, default=300, help="how many people (default 300)")
    d.add_argument("--days", type=_positive, default=30, help="days of history (default 30)")
    d.add_argument("--seed", type=int, default=None, help="random seed")
    d.set_defaults(func=cmd_demo)
    return p


#: How the libraries we write through say "the disk is full" when they wrap the OSError in their own
#: exception (DuckDB's IOException, SQLite's "database or disk is full" in Airflow's metadata database).
_DISK_FULL_WORDS = ("no space left on device", "database or disk is full")


def disk_full_reason(exc: BaseException | None) -> str | None:
    """The first line of a 'disk full' failure anywhere in ``exc``'s chain of causes; None for any
    other failure (which keeps its traceback: that one is a bug to report, not a state to fix)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or any(w in text.lower() for w in _DISK_FULL_WORDS):
            return (text.strip().splitlines() or [type(exc).__name__])[0]
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .config import load_settings

    _setup_logging(args.verbose, load_settings())
    func: Callable[[argparse.Namespace], int] = args.func
    from .identifiers import BadPhoneRegion, check_default_region
    from .kafka_io import BrokerUnavailable, GroupShared
    from .pipeline import RunInProgress, RunInterrupted
    from .publish import SnapshotRejected
    from .query import QueryError
    from .warehouse import WarehouseBusy

    def on_sigterm(signum, frame) -> None:  # like Ctrl-C: `finally` blocks run (temp files go), one line
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        check_default_region()
        return func(args)
    except (UserError, BadPhoneRegion, BrokerUnavailable, WarehouseBusy, TimeoutError, QueryError, SnapshotRejected,
            RunInProgress, GroupShared) as exc:
        print(f"omnivue: error: {exc}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"omnivue: interrupted ({exc or 'SIGINT'}): the run stopped where it was, nothing after it ran and "
              "the snapshot was not replaced by an unverified one; run `omnivue run` again", file=sys.stderr)
        return 130
    except KeyboardInterrupt as exc:
        print(f"omnivue: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 130
    except Exception as exc:
        reason = disk_full_reason(exc)
        if reason is None:
            raise
        log.debug("the disk filled up", exc_info=True)
        print(f"omnivue: error: the disk is full ({reason}); free some space and run the command again: "
              "what was committed before is kept", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
