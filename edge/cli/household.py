"""The facade as commands: each one opens a :class:`~edge.recommender.Recommender` and calls the
method of the same name (``add-item`` is ``add_item``) with options named after its arguments
(``--item-id`` is ``item_id``; a repeatable ``--tag`` fills ``tags``, ``--kind`` in ``recent``
fills ``kinds``). ``tests/test_cli_docs.py`` holds every command here to that rule.

Library errors (``HistoryError``, ``BundleError``...) become one line and exit 1 in
:func:`edge.cli.main`.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime, timezone

from edge.context import DEVICE_KINDS
from edge.contract.defaults import DEFAULT_K
from edge.contract.events import EVENT_KINDS
from edge.contract.content import CONTENT_COLUMNS
from edge.errors import HistoryError, QueryError
from edge.cli.common import json_arg, open_recommender, print_json, recommender_args


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _event_json(e) -> dict:
    return dataclasses.asdict(e) | {"tags": list(e.tags)}


# -- handlers: one facade call each -------------------------------------------------------------

def _ranges(specs: list[str] | None) -> dict[str, list[float | None]] | None:
    """``--where tempo_bpm=:100`` -> ``{"tempo_bpm": [None, 100.0]}`` (either end may be empty)."""
    if not specs:
        return None
    out: dict[str, list[float | None]] = {}
    for spec in specs:
        name, sep, bounds = spec.partition("=")
        lo, colon, hi = bounds.partition(":")
        if not sep or not colon or not name:
            raise QueryError(f"--where {spec!r}: expected NAME=LOW:HIGH, either end may be empty (e.g. tempo_bpm=:100)")
        try:
            out[name] = [float(lo) if lo.strip() else None, float(hi) if hi.strip() else None]
        except ValueError:
            raise QueryError(f"--where {spec!r}: LOW and HIGH must be numbers") from None
    return out


def _cmd_recommend(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        recs = rec.recommend(args.profile, k=args.k, device=args.device, timestamp=args.timestamp, query=args.query,
                             max_duration_s=args.max_duration_s, kind=args.kind, where=_ranges(args.where),
                             session_items=args.session_items or ())
        total_s = rec.timings.get("total_s", 0.0)
    if args.json:
        print_json([dataclasses.asdict(r) for r in recs])
        return 0
    for n, r in enumerate(recs, 1):
        print(f"{n:>2}  {r.kind:<5} {r.score:7.3f}  {r.title}  ({r.reason})")
    print(f"# {len(recs)} items for {args.profile!r} in {total_s * 1000:.2f} ms")
    return 0


def _cmd_home(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        rows = rec.home(args.profile, device=args.device, timestamp=args.timestamp, per_row=args.per_row,
                        session_items=args.session_items or ())
        total_s = rec.timings.get("total_s", 0.0)
    if args.json:
        print_json([dataclasses.asdict(r) for r in rows])
        return 0
    for row in rows:
        print(f"== {row.title}  ({row.reason})")
        for r in row.items:
            print(f"   {r.kind:<5} {r.title}  ({r.reason})")
    print(f"# {len(rows)} rows, {sum(len(r.items) for r in rows)} items for {args.profile!r} in {total_s * 1000:.2f} ms")
    return 0


def _cmd_who_is_watching(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        guesses = rec.who_is_watching(device=args.device, timestamp=args.timestamp, session_items=args.session_items or ())
    if args.json:
        print_json([dataclasses.asdict(g) for g in guesses])
        return 0
    for g in guesses:
        print(f"{g.probability:6.1%}  {g.profile}  ({g.reason})")
    return 0


def _cmd_privacy(args: argparse.Namespace) -> int:
    from edge.privacy import render_receipt

    with open_recommender(args) as rec:
        receipt = rec.privacy(args.profile)
    if args.json:
        print_json(receipt)
        return 0
    print(render_receipt(receipt))
    return 0


def _cmd_apply_delta(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        done = rec.apply_delta(args.path)
    if args.json:
        print_json(done)
        return 0
    print(f"applied {args.path}: {done['bundle']} ({done['items']} items) is active; {done['previous']} kept for rollback")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        event_id = rec.record(args.profile, args.item_id, kind=args.kind, timestamp=args.timestamp, value=args.value,
                              device=args.device, client_id=args.client_id)
    print(f"recorded event {event_id}: {args.profile} {args.kind} {args.item_id}")
    return 0


def _cmd_add_item(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        item_id = rec.add_item(args.source, args.title, tags=args.tags or (), kind=args.kind, description=args.description,
                               profile=args.profile, item_id=args.item_id)
    owner = f"profile {args.profile!r}" if args.profile else "the household"
    print(f"added {item_id} ({args.title}) for {owner}: it can be recommended now")
    return 0


def _cmd_add_profile(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        limit = rec.add_profile(args.profile, age_limit=args.age_limit)
    print(f"profile {args.profile!r}: " + ("no age limit" if limit is None else f"age limit {limit}"))
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        names = rec.profiles()
        rows = [(p, rec.history.count(p), rec.history.age_limit(p)) for p in names]
        version = rec.history.schema_version
    if args.json:
        print_json([{"profile": p, "events": n, "age_limit": a} for p, n, a in rows])
        return 0
    width = max(len("profile"), *(len(p) for p, _, _ in rows))
    print(f"{'profile':<{width}}  {'events':>8}  age limit")
    for p, n, a in rows:
        print(f"{p:<{width}}  {n:>8}  {'-' if a is None else a}")
    print(f"# {args.db}: {len(rows)} profile(s), schema version {version}")
    return 0


def _cmd_recent(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        events = rec.recent(args.profile, n=args.n, kinds=args.kinds)
        total = rec.history.count(args.profile)
        tags = rec.history.tag_counts(args.profile)
    if args.json:
        print_json([_event_json(e) for e in events])
        return 0
    print(f"{'id':>8}  {'time (UTC)':<20}  {'kind':<11}  {'value':>6}  {'device':<7}  item")
    for e in events:
        value = "" if e.value is None else f"{e.value:.2f}"
        print(f"{e.id:>8}  {_when(e.timestamp):<20}  {e.kind:<11}  {value:>6}  {e.device or '':<7}  {e.item_id}")
    top = ", ".join(f"{t} {n}" for t, n in list(tags.items())[:10])
    print(f"# {len(events)} of {total} events shown; top tags: {top or '-'}")
    return 0


def _cmd_block(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        items = rec.block(args.profile, args.item_id, blocked=args.blocked)
    verb = "blocked" if args.blocked else "unblocked"
    print(f"{verb} {args.item_id} for {args.profile!r}; {len(items)} item(s) blocked now")
    return 0


def _cmd_blocked(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        items = rec.blocked(args.profile)
    if args.json:
        print_json(items)
        return 0
    for item_id in items:
        print(item_id)
    print(f"# {len(items)} item(s) blocked for {args.profile!r}")
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        if not args.yes:
            n = rec.history.count(args.profile) if args.profile in rec.profiles() else 0
            raise HistoryError(f"forgetting {args.profile!r} deletes {n} events and everything else about it for good; "
                               "pass --yes to confirm")
        gone = rec.forget(args.profile)
    print(f"forgot {gone.profile!r}: {gone.events} events, {gone.local_items} local items, {gone.settings} settings; file vacuumed"
          + ("" if gone.wal_truncated else " (another process holds the WAL: its old pages go at its next checkpoint)"))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        doc = rec.export(args.profile, path=args.path)
    if args.json:
        print_json(doc)
        return 0
    where = f" to {args.path}" if args.path else " (not written: give --path FILE, or --json to print it)"
    print(f"exported {args.profile!r}{where}: {len(doc['events'])} events, {len(doc['local_items'])} local items, "
          f"{len(doc['settings'])} settings, schema version {doc['schema_version']}")
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    with open_recommender(args) as rec:
        h = rec.health()
    if args.json:
        print_json(h)
        return 0
    b, hist = h["bundle"], h["history"]
    print(f"edgerec {h['version']}")
    print(f"bundle   {b['id']} (created {b['created_at'] or '?'}), {b['items']} items, dim {b['embedding_dim']}")
    print(f"backend  {h['backend']}")
    print(f"history  {hist['path']}" + (f" (a damaged file was moved to {hist['recovered_from']})" if hist["recovered_from"] else ""))
    return 0


# -- parsers ------------------------------------------------------------------------------------

def _profile(p: argparse.ArgumentParser, required: bool = True, help: str = "household profile id (a person)") -> None:
    p.add_argument("--profile", required=required, default=None, help=help)


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICE_KINDS, default="tv", help="device kind (default tv)")


def _timestamp(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--timestamp", type=float, default=None, help=help)


def _session(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session-item", dest="session_items", action="append", default=None, metavar="ITEM",
                   help="an item played in this session so far, oldest first (repeatable): evidence of who is watching "
                        "for --profile auto")


def register(sub: "argparse._SubParsersAction") -> None:
    """Add the facade's commands to ``sub``: ``recommend``, ``home``, ``who-is-watching``, ``privacy``, ``apply-delta``, ``record``, ``add-item``,
    ``add-profile``, ``profiles``, ``recent``, ``block``, ``blocked``, ``forget``, ``export``, ``health``."""

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description)
        recommender_args(p)
        return p

    p = command("recommend", "top-k items for a profile (Recommender.recommend)",
                "Recommend offline for one profile from the bundle and the history, best first, each with a reason.")
    _profile(p, help="household profile id (must exist: created by record or add-profile), or auto: the likeliest viewer")
    p.add_argument("-k", "--k", type=int, default=DEFAULT_K, help=f"how many items (default {DEFAULT_K})")
    _device(p)
    _timestamp(p, "Unix time of the request in seconds: decides hour, weekday and availability (default now)")
    p.add_argument("--query", default=None, help="steer by words, e.g. 'calm piano for dinner' (what a speech recogniser heard)")
    p.add_argument("--max-duration-s", type=float, default=None, help="only items at most this many seconds long")
    p.add_argument("--kind", choices=["audio", "video"], default=None, help="only audio or only video items")
    p.add_argument("--where", action="append", default=None, metavar="NAME=LOW:HIGH",
                   help=f"only items whose measured content is in range (repeatable; either end may be empty), NAME one of "
                        f"{', '.join(CONTENT_COLUMNS)}")
    _session(p)
    json_arg(p)
    p.set_defaults(func=_cmd_recommend)

    p = command("home", "the home screen: titled rows of items for a profile (Recommender.home)",
                "The home screen for one profile: Continue watching, Because you watched X, Popular now, New for you "
                "and Something different, each row explained; no item appears in two rows.")
    _profile(p, help="household profile id (must exist: created by record or add-profile), or auto: the likeliest viewer")
    _device(p)
    _timestamp(p, "Unix time of the request in seconds: decides hour, weekday, availability and what is new (default now)")
    p.add_argument("--per-row", type=int, default=10, help="items per row (default 10)")
    _session(p)
    json_arg(p)
    p.set_defaults(func=_cmd_home)

    p = command("who-is-watching", "which household profile is probably watching (Recommender.who_is_watching)",
                "Guess the viewer on a shared TV from each profile's habits (hours, weekdays, device, what it plays), the "
                "request's time and device, and the items of the session so far; prints every profile with history and "
                "its probability. --profile auto on recommend and home uses the same guess.")
    _device(p)
    _timestamp(p, "Unix time of the request in seconds: decides hour and weekday (default now)")
    _session(p)
    json_arg(p)
    p.set_defaults(func=_cmd_who_is_watching)

    p = command("apply-delta", "apply a signed catalogue delta to the store being served (Recommender.apply_delta)",
                "Apply a catalogue delta (edgerec pipeline delta) to the bundle store given as --bundle, as a running "
                "recommender does: verified like a full install, the previous bundle kept for rollback. The same as "
                "`edgerec bundle apply-delta STORE DELTA`, through the facade.")
    p.add_argument("path", help="the delta archive (.tar)")
    json_arg(p)
    p.set_defaults(func=_cmd_apply_delta)

    p = command("privacy", "what is stored about each profile, and what left the device (Recommender.privacy)",
                "The privacy receipt: per profile the events (by kind, oldest and newest), local items, settings and size "
                "on disk; the retention settings; exports and forgotten profiles; and what can leave the device.")
    _profile(p, required=False, help="one profile (default: every profile)")
    json_arg(p)
    p.set_defaults(func=_cmd_privacy)

    p = command("record", "store one event (Recommender.record)",
                "Store one event for a catalogue or local item; the item id is checked against the bundle's catalogue "
                "and the local items, and the profile is created on first use. Prints the event id.")
    _profile(p, help="household profile id (created on first use)")
    p.add_argument("--item-id", required=True, help="a catalogue item id or a local item id")
    p.add_argument("--kind", default="play", choices=EVENT_KINDS, metavar="KIND", help=f"one of {', '.join(EVENT_KINDS)} (default play)")
    _timestamp(p, "Unix time of the event in seconds, 2000 to now + 2 days (default now)")
    p.add_argument("--value", type=float, default=None, help="watched fraction 0..1, or a rating")
    _device(p)
    p.add_argument("--client-id", default=None,
                   help="the app's own id for this event: recording the same id again for the profile stores nothing new "
                        "and prints the first event's id (safe retries)")
    p.set_defaults(func=_cmd_record)

    p = command("add-item", "describe local content (a recording, a file) and make it recommendable (Recommender.add_item)",
                "Extract features from an audio file, video/image file or frame strip on this device, embed it with "
                "the bundle's fusion student and store it in the history database.")
    p.add_argument("source", help="audio file (wav/flac/ogg/mp3), video file (its frames and its soundtrack), image file, folder of images, or .npy frames")
    p.add_argument("--title", required=True, help="title shown in recommendations")
    p.add_argument("--tag", dest="tags", action="append", default=None, metavar="TAG", help="a tag (repeatable)")
    p.add_argument("--kind", choices=["audio", "video"], default=None, help="default: audio for audio files, else video")
    p.add_argument("--description", default="", help="programme-guide text")
    _profile(p, required=False, help="owner profile, removed with it by forget (default: shared by the household)")
    p.add_argument("--item-id", default=None, help="item id (default: local: plus a hash of title and source)")
    p.set_defaults(func=_cmd_add_item)

    p = command("add-profile", "create a household profile, optionally with an age limit (Recommender.add_profile)",
                "Create a profile (a person in the household); an existing profile keeps the age limit it has. "
                "Prints the stored age limit.")
    _profile(p, help="household profile id to create")
    p.add_argument("--age-limit", type=int, default=None, help="age limit in years: items rated above it are left out")
    p.set_defaults(func=_cmd_add_profile)

    p = command("profiles", "list the household profiles (Recommender.profiles)",
                "Every profile in the history, the built-in guest included, with its event count and age limit.")
    json_arg(p)
    p.set_defaults(func=_cmd_profiles)

    p = command("recent", "a profile's newest events (Recommender.recent)",
                "The last N events of a profile, newest first, and its top tags.")
    _profile(p)
    p.add_argument("-n", "--n", type=int, default=20, help="how many events (default 20)")
    p.add_argument("--kind", dest="kinds", action="append", default=None, choices=EVENT_KINDS, metavar="KIND",
                   help=f"only events of this kind, one of {', '.join(EVENT_KINDS)} (repeatable; default every kind)")
    json_arg(p)
    p.set_defaults(func=_cmd_recent)

    p = command("block", "never recommend an item to a profile, or allow it again (Recommender.block)",
                "Block an item for a profile (--no-blocked allows it again). Prints how many items are blocked.")
    _profile(p)
    p.add_argument("--item-id", required=True, help="item id to block")
    p.add_argument("--blocked", action=argparse.BooleanOptionalAction, default=True,
                   help="--no-blocked unblocks the item (default: block it)")
    p.set_defaults(func=_cmd_block)

    p = command("blocked", "list the items blocked for a profile (Recommender.blocked)",
                "The item ids blocked for a profile, one per line.")
    _profile(p)
    json_arg(p)
    p.set_defaults(func=_cmd_blocked)

    p = command("forget", "delete every trace of a profile (Recommender.forget)",
                "Delete a profile's events, aggregates, local items and settings, then vacuum the file so no bytes "
                "remain. Irreversible: needs --yes.")
    _profile(p, help="household profile id to forget")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.set_defaults(func=_cmd_forget)

    p = command("export", "everything stored about a profile, as JSON (Recommender.export)",
                "Export a profile's events, aggregates, local items and settings as JSON: written to --path, "
                "printed with --json, summarised otherwise.")
    _profile(p)
    p.add_argument("--path", default=None, help="JSON file to write (atomically)")
    json_arg(p)
    p.set_defaults(func=_cmd_export)

    p = command("health", "what is running: version, bundle, backend, history file (Recommender.health)",
                "Open the bundle and the history and print edgerec's version, the bundle's id, creation time, items "
                "and dimension, the interest model's backend and the history file.")
    json_arg(p)
    p.set_defaults(func=_cmd_health)
