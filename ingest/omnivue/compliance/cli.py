"""Command line of the compliance commands, as ``add_*_arguments(parser)`` /
``run_*(args) -> int`` pairs for ``omnivue`` (cli.py) to mount:

    omnivue audit ack EVENT_ID [EVENT_ID ...] --by NAME --why TEXT
    omnivue audit report [--out FILE]
    omnivue subject export (--email X | --phone X | ...) [--out FILE] [--queue]
    omnivue subject erase  (--email X | --phone X | ...) [--by NAME] [--why TEXT] [--queue | --dry-run]
    omnivue subject serve            # what the subject_requests DAG runs
    omnivue subject list

``python -m omnivue.compliance ...`` runs the same commands stand-alone.
Problems the user can fix print one line and exit 1; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .store import ComplianceError
from ..cli_types import nonempty as _nonempty
from ..cli_types import positive_int as _positive

log = logging.getLogger("omnivue.compliance")

IDENTIFIER_OPTIONS = (("email", "email"), ("phone", "phone"), ("customer-id", "customer_id"),
                      ("device-id", "device_id"), ("anonymous-id", "anonymous_id"), ("social-handle", "social_handle"))


def _normalised(kind: str):
    def parse(text: str) -> str:
        from ..identifiers import normalize_identifier

        try:
            return normalize_identifier(kind, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def _add_identifier(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    for flag, kind in IDENTIFIER_OPTIONS:
        g.add_argument(f"--{flag}", dest=kind, metavar="VALUE", type=_normalised(kind),
                       help=f"the person's {kind.replace('_', ' ')}" + (" (platform:handle)" if kind == "social_handle" else ""))


def _seed(args: argparse.Namespace):
    from ..config import load_settings
    from .subject import Seed

    for _, kind in IDENTIFIER_OPTIONS:
        value = getattr(args, kind, None)
        if value is not None:
            return Seed.from_value(load_settings().pseudonym_key, kind, value)
    raise ComplianceError("name the person with one identifier option")


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """Mount ``ack`` and ``report`` under ``parser`` (the ``audit`` command)."""
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    a = sub.add_parser("ack", help="acknowledge consent violations (who, why, when; they stay in the audit)",
                       description="Acknowledge one or more consent violations (consent_audit event ids). The "
                       "acknowledgement is stored in violation_acks; the violation stays in consent_audit and in the "
                       "report, and stops being reminded on the alerts topic.")
    a.add_argument("event_ids", nargs="+", metavar="EVENT_ID", help="event_id of the marketing send (consent_audit)")
    a.add_argument("--by", required=True, type=_nonempty, help="who acknowledges (recorded)")
    a.add_argument("--why", required=True, type=_nonempty, help="why: remediation, ticket (recorded)")
    a.set_defaults(audit_func=_cmd_ack)
    r = sub.add_parser("report", help="write the self-contained HTML audit report",
                       description="Write one self-contained HTML file (no external assets): runs, checks and "
                       "outcomes over time, open and acknowledged consent violations with the consent record, a chart "
                       "of violations over time, consent conflicts, erasure and access requests served.")
    r.add_argument("--out", type=Path, default=None,
                   help="where to write it (default $OMNIVUE_HOME/reports/audit-report-<time>.html)")
    r.set_defaults(audit_func=_cmd_report)


def _cmd_ack(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .acknowledge import acknowledge

    for ack in acknowledge(load_settings(), args.event_ids, args.by, args.why):
        if ack.new:
            print(f"acknowledged {ack.event_id} (person {ack.person_id}) by {ack.acknowledged_by} at "
                  f"{ack.acknowledged_at.isoformat()}: {ack.reason}")
        else:
            print(f"{ack.event_id} was already acknowledged by {ack.acknowledged_by} at "
                  f"{ack.acknowledged_at.isoformat()} ({ack.reason}); kept as it was")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .report import write_report

    path, data = write_report(load_settings(), args.out)
    open_v = sum(1 for v in data["violations"] if not v.get("acknowledged_at"))
    print(f"wrote {path}: {len(data['runs'])} runs, {len(data['violations'])} consent violations ({open_v} open), "
          f"{len(data['requests'])} subject requests")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    return _guard(args.audit_func, args)


# --- omnivue subject ---------------------------------------------------------------------------

def add_subject_arguments(parser: argparse.ArgumentParser) -> None:
    """Mount ``export``, ``erase``, ``serve`` and ``list`` under ``parser`` (the ``subject`` command)."""
    sub = parser.add_subparsers(dest="subject_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    e = sub.add_parser("export", help="right of access: everything held on a person, as one JSON document",
                       description="Write one JSON document with everything omnivue holds on the person named by one "
                       "identifier (all of the person's identifiers, events and interactions, consent history, "
                       "customer_360 attributes, audience membership, dead letters mentioning them). The request is "
                       "recorded in subject_requests (keyed hash of the identifier, time, what was exported).")
    _add_identifier(e)
    e.add_argument("--out", type=Path, default=None, help="file to write (default: standard output; with --queue: "
                   "$OMNIVUE_HOME/exports/<request>.json)")
    e.add_argument("--by", default=None, help="who asks (recorded)")
    e.add_argument("--why", default=None, help="reference of the request (recorded)")
    e.add_argument("--queue", action="store_true", help="queue it for the subject_requests DAG instead")
    e.set_defaults(subject_func=_cmd_export)
    x = sub.add_parser("erase", help="right to erasure: remove a person from every store under OMNIVUE_HOME",
                       description="Erase the person named by one identifier (all of their identifiers) from the "
                       "warehouse, the published snapshot, dead letters, logs and other files under OMNIVUE_HOME; "
                       "rewrite the database files; verify nothing is left; suppress their identifiers at ingest; "
                       "publish an erasure notice (keyed hashes) on the 'erasure' topic. Kafka topics may still hold "
                       "old records: re-ingestion is prevented by the suppression list.")
    _add_identifier(x)
    x.add_argument("--by", default=None, help="who asks (recorded)")
    x.add_argument("--why", default=None, help="reference of the request (recorded)")
    mode = x.add_mutually_exclusive_group()
    mode.add_argument("--queue", action="store_true", help="queue it for the subject_requests DAG (the identifier "
                      "is suppressed at once)")
    mode.add_argument("--dry-run", action="store_true", help="show what would be erased; change nothing")
    x.add_argument("--max-identifiers", type=_positive, default=200,
                   help="refuse when the person resolves to more identifiers than this (default 200)")
    x.set_defaults(subject_func=_cmd_erase)
    s = sub.add_parser("serve", help="serve queued requests and pending erasure notices (what the DAG runs)",
                       description="Serve every queued erasure, then every queued access request, oldest first; "
                       "publish erasure notices that could not be sent before.")
    s.set_defaults(subject_func=_cmd_serve)
    li = sub.add_parser("list", help="list subject requests (keyed hashes only)")
    li.add_argument("--json", action="store_true", help="as JSON")
    li.set_defaults(subject_func=_cmd_list)


def _cmd_export(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .requests import export_subject, queue_request

    settings = load_settings()
    seed = _seed(args)
    if args.queue:
        rid = queue_request(settings, "access", seed, args.by, args.why, args.out)
        print(f"queued access request {rid}; the subject_requests DAG (or `omnivue subject serve`) serves it")
        return 0
    rid, doc = export_subject(settings, [seed], out=args.out, requested_by=args.by, reason=args.why)
    if args.out is None:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        counts = ", ".join(f"{k} {len(doc[k])}" for k in ("identifiers", "events", "interactions", "consent_history",
                                                           "audience_membership", "dead_letters"))
        print(f"request {rid}: wrote {args.out} ({counts})")
    if not doc["identifiers"]:
        print("nothing is held on this identifier", file=sys.stderr)
    return 0


def _cmd_erase(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .erasure import erase_subject
    from .requests import queue_request

    settings = load_settings()
    seed = _seed(args)
    if args.queue:
        rid = queue_request(settings, "erasure", seed, args.by, args.why)
        print(f"queued erasure request {rid}; the identifier is suppressed at ingest from now on; the "
              "subject_requests DAG (or `omnivue subject serve`) serves it")
        return 0
    result = erase_subject(settings, [seed], requested_by=args.by, reason=args.why, dry_run=args.dry_run,
                           max_identifiers=args.max_identifiers)
    print(result.render())
    return 0 if (args.dry_run or result.clean) else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .requests import serve_queue

    served = serve_queue(load_settings())
    for s in served:
        print(s.summary)
    print(f"served {len(served)} requests" if served else "no queued request")
    return 0 if all(s.status in ("served", "already_erased", "not_found", "refused") for s in served) else 1


def _cmd_list(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .requests import list_requests

    rows = list_requests(load_settings())
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no subject request")
    for r in rows:
        print(f"{r['request_id']}  {r['kind']:<8} {r['identifier_type']:<13} {r['identifier_hash'][:16]}…  "
              f"{r['status']:<20} requested {r['requested_at']}  served {r['served_at'] or '-'}")
    return 0


def run_subject(args: argparse.Namespace) -> int:
    return _guard(args.subject_func, args)


def _guard(func, args: argparse.Namespace) -> int:
    from ..warehouse import WarehouseBusy

    try:
        return func(args)
    except (ComplianceError, WarehouseBusy, TimeoutError) as exc:
        print(f"omnivue: error: {exc}", file=sys.stderr)
        return 1


# --- stand-alone ---------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="omnivue", description="omnivue compliance commands")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    a = sub.add_parser("audit", help="consent audit: acknowledge violations, HTML report")
    add_audit_arguments(a)
    a.set_defaults(func=run_audit)
    s = sub.add_parser("subject", help="data subject requests: access export, erasure")
    add_subject_arguments(s)
    s.set_defaults(func=run_subject)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..cli import _setup_logging
    from ..config import load_settings

    _setup_logging(args.verbose, load_settings())
    return args.func(args)
