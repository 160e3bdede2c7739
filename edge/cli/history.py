"""``edgerec history record|show|forget|export``: thin wrappers over :class:`HistoryStore`
methods of the same names. Library errors (``HistoryError``) become one line and exit 1 in
:func:`edge.cli.main`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime, timezone

from edge.context import DEVICE_KINDS
from edge.errors import HistoryError
from edge.history import EVENT_KINDS, HistoryStore


def _open(args: argparse.Namespace) -> HistoryStore:
    return HistoryStore(args.db)


def _cmd_record(args: argparse.Namespace) -> int:
    with _open(args) as store:
        store.add_profile(args.profile)
        event_id = store.record(
            args.profile, args.item, args.kind, args.at, args.value,
            device=args.device, position_s=args.position, surface=args.surface, tags=args.tag or (),
        )
    print(f"recorded event {event_id}: {args.profile} {args.kind} {args.item}")
    return 0


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.profile is None:
            rows = [(p, store.count(p), len([i for i in store.local_items(p) if i.profile == p])) for p in store.profiles()]
            shared = len(store.local_items())
            if args.json:
                print(json.dumps({"schema_version": store.schema_version, "profiles": [{"profile": p, "events": n, "local_items": k} for p, n, k in rows], "household_local_items": shared}, ensure_ascii=False, indent=2))
                return 0
            width = max(len("profile"), *(len(p) for p, _, _ in rows))
            print(f"{'profile':<{width}}  {'events':>8}  {'local items':>11}")
            for p, n, k in rows:
                print(f"{p:<{width}}  {n:>8}  {k:>11}")
            print(f"# {args.db}: schema version {store.schema_version}, {shared} local item(s) shared by the household")
            return 0
        events = store.recent(args.profile, args.n, kinds=args.kind)
        tags = store.tag_counts(args.profile)
        hours = store.hour_counts(args.profile)
        total = store.count(args.profile)
    if args.json:
        print(json.dumps({"profile": args.profile, "events": total, "recent": [asdict(e) | {"tags": list(e.tags)} for e in events], "tag_counts": tags, "hour_counts": hours}, ensure_ascii=False, indent=2))
        return 0
    print(f"{'id':>8}  {'time (UTC)':<20}  {'kind':<11}  {'value':>6}  {'device':<7}  {'surface':<10}  item  [tags]")
    for e in events:
        value = "" if e.value is None else f"{e.value:.2f}"
        print(f"{e.id:>8}  {_when(e.timestamp):<20}  {e.kind:<11}  {value:>6}  {e.device or '':<7}  {e.surface or '':<10}  {e.item_id}  {list(e.tags) if e.tags else ''}")
    top = ", ".join(f"{t} {n}" for t, n in list(tags.items())[:10])
    print(f"# {len(events)} of {total} events shown; top tags: {top or '-'}")
    print("# events by hour (UTC): " + " ".join(f"{h:02d}:{n}" for h, n in enumerate(hours) if n))
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if not args.yes:
            n = store.count(args.profile) if args.profile in store.profiles() else 0
            raise HistoryError(f"forgetting {args.profile!r} deletes {n} events and everything else about it for good; pass --yes to confirm")
        gone = store.forget(args.profile)
    print(f"forgot {gone.profile!r}: {gone.events} events, {gone.local_items} local items, {gone.settings} settings; file vacuumed"
          + ("" if gone.wal_truncated else " (another process holds the WAL: its old pages go at its next checkpoint)"))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    with _open(args) as store:
        doc = store.export(args.profile, args.out)
    if args.out is None:
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        print(f"exported {len(doc['events'])} events of {args.profile!r} to {args.out}", file=sys.stderr)
    return 0


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``history`` and its actions to ``sub``."""
    group = sub.add_parser(
        "history",
        help="inspect and manage the on-device history (SQLite)",
        description="Record, show, forget or export what a profile did. The history lives only in the SQLite file given by --db.",
    )
    hsub = group.add_subparsers(dest="history_command", metavar="ACTION", required=True)

    def db_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", required=True, help="SQLite history file (created when missing; a damaged one is moved aside)")

    p = hsub.add_parser("record", help="store one event", description="Store one event for a profile; the profile is created on first use. Prints the event id.")
    db_arg(p)
    p.add_argument("--profile", required=True, help="profile id (an opaque id, not a name)")
    p.add_argument("--item", required=True, help="item id")
    p.add_argument("--kind", default="play", choices=EVENT_KINDS, help="event kind (default play)")
    p.add_argument("--at", type=float, default=None, help="Unix time in seconds (default now; 2000 to now + 2 days)")
    p.add_argument("--value", type=float, default=None, help="watched fraction 0..1 (or a rating)")
    p.add_argument("--position", type=float, default=None, help="playback position in seconds")
    p.add_argument("--surface", default=None, help="where in the UI it happened, e.g. home or search")
    p.add_argument("--device", choices=DEVICE_KINDS, default="tv", help="device kind (default tv)")
    p.add_argument("--tag", action="append", metavar="TAG", help="a tag of the item, counted in the profile's aggregates (repeatable)")
    p.set_defaults(func=_cmd_record)

    p = hsub.add_parser("show", help="list profiles, or a profile's recent events", description="Without --profile: every profile with its event count. With --profile: its newest events, top tags and events by hour.")
    db_arg(p)
    p.add_argument("--profile", default=None, help="profile id (default: list profiles)")
    p.add_argument("-n", type=int, default=20, help="how many recent events (default 20)")
    p.add_argument("--kind", action="append", choices=EVENT_KINDS, help="only this kind (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_show)

    p = hsub.add_parser("forget", help="delete every trace of a profile", description="Delete a profile's events, aggregates, local items and settings, then vacuum the file so no bytes remain. Irreversible: needs --yes.")
    db_arg(p)
    p.add_argument("--profile", required=True, help="profile id")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.set_defaults(func=_cmd_forget)

    p = hsub.add_parser("export", help="write a profile's data as JSON", description="Export everything stored about a profile (events, aggregates, local items, settings) as JSON.")
    db_arg(p)
    p.add_argument("--profile", required=True, help="profile id")
    p.add_argument("--out", default=None, help="JSON file to write (default: standard output)")
    p.set_defaults(func=_cmd_export)
