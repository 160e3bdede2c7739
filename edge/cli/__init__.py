"""``edgerec``: the command line. Device commands live here; server commands (``demo``,
``demo-data``, ``eval``...) are registered by the ``export`` package through the
``edgerec.commands`` entry point, so this module never imports the server side."""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points
from typing import Sequence

from edge.errors import EdgeError

#: Modules with a ``register(subparsers)`` function for device-side command groups.
DEVICE_COMMAND_MODULES: tuple[str, ...] = ("edge.cli.features", "edge.cli.history", "edge.cli.serve", "edge.cli.bench", "edge.package")


def _cmd_recommend(args: argparse.Namespace) -> int:
    from edge.context import Context
    from edge.recommender import Recommender

    rec = Recommender.open(args.bundle, args.db)
    try:
        ctx = Context.at(args.at, args.device)
        recs = rec.recommend(args.profile, k=args.k, context=ctx)
    finally:
        rec.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in recs], indent=2, ensure_ascii=False))
    else:
        for n, r in enumerate(recs, 1):
            print(f"{n:>2}  {r.kind:<5} {r.score:7.3f}  {r.title}  ({r.reason})")
        print(f"# {rec.timings['total_s'] * 1000:.2f} ms")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from edge.recommender import Recommender

    rec = Recommender.open(args.bundle, args.db)
    try:
        rec.record(args.profile, args.item, args.kind, timestamp=args.at, value=args.value, device=args.device)
    finally:
        rec.close()
    return 0


def _cmd_add_item(args: argparse.Namespace) -> int:
    from edge.recommender import Recommender

    rec = Recommender.open(args.bundle, args.db)
    try:
        item = rec.add_item(args.source, args.title, tags=args.tag or (), kind=args.kind, description=args.description,
                                  profile=args.profile, item_id=args.id)
    finally:
        rec.close()
    owner = f"profile {args.profile}" if args.profile else "the household"
    print(f"added {item} ({args.title}) for {owner}: it can be recommended now")
    return 0


def _trust(args: argparse.Namespace) -> dict:
    """``trusted_keys``/``require_signature`` from ``--profile``, overridden by ``--trusted-keys``
    and ``--require-signature`` (which can add the requirement, never lift a profile's)."""
    from edge.bundle.signing import TrustedKeys

    trust: dict = {"trusted_keys": None, "require_signature": False}
    if args.profile:
        from edge.profiles import load_profile

        trust = load_profile(args.profile).bundle_options()
    if args.trusted_keys:
        trust["trusted_keys"] = TrustedKeys.from_dir(args.trusted_keys)
    trust["require_signature"] = trust["require_signature"] or args.require_signature
    return trust


def _cmd_bundle_verify(args: argparse.Namespace) -> int:
    from edge.bundle import Bundle
    from edge.bundle.signing import read_signature

    trust = _trust(args)
    b = Bundle.open(args.bundle, **trust)
    sig = read_signature(args.bundle)
    if sig is None:
        signed = "unsigned"
    elif trust["trusted_keys"] is None:
        signed = f"signature by key {sig['key_id']} not checked (no --trusted-keys)"
    else:
        signed = f"signed by trusted key {sig['key_id']}"
    print(f"ok: {args.bundle}: {len(b.items)} items, dim {b.embedding_dim}, models {sorted(b.manifest['models'])}, "
          f"{len(b.manifest['files'])} files verified, {signed}")
    return 0


def _cmd_bundle_install(args: argparse.Namespace) -> int:
    from edge.bundle.store import BundleStore

    store = BundleStore(args.store, keep=args.keep, **_trust(args))
    before = store.history()
    entry = store.install(args.source)
    if before and before[0].id == entry.id:
        print(f"unchanged: {entry.id} is already the active bundle in {args.store}")
        return 0
    print(f"installed: {entry.id} (created {entry.created_at}) from {args.source} is now active: {entry.path}")
    kept = [e.id for e in store.history() if not e.active]
    print(f"rollback: {', '.join(kept) if kept else 'none kept'}")
    return 0


def _cmd_bundle_rollback(args: argparse.Namespace) -> int:
    from edge.bundle.store import BundleStore

    store = BundleStore(args.store, create=False)
    before = store.history()
    entry = store.rollback()
    print(f"rolled back: {entry.id} (created {entry.created_at}) is active again; {before[0].id} was removed")
    return 0


def _cmd_bundle_list(args: argparse.Namespace) -> int:
    from edge.bundle.store import BundleStore

    entries = BundleStore(args.store, create=False).history()
    if not entries:
        print(f"no bundle installed in {args.store}")
    for e in entries:
        state = "active  " if e.active else "previous"
        print(f"{state}  {e.id}  created {e.created_at or '?'}  {e.path}{'' if e.present else '  (MISSING)'}")
    return 0


def _trust_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trusted-keys", metavar="DIR", help="folder of trusted ed25519 *.pub keys and revoked.txt; "
                   "a bundle's manifest.sig must verify against them (default: the profile's security.trusted_keys_dir)")
    p.add_argument("--require-signature", action="store_true", help="refuse a bundle without a valid signature from a trusted key")
    p.add_argument("--profile", help="device profile (name or .toml) whose [security] section gives the defaults")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with server commands added when the export package provides them."""
    parser = argparse.ArgumentParser(prog="edgerec", description="On-device recommendations for TVs and speakers, offline.")
    from edge import __version__

    parser.add_argument("--version", action="version", version=f"edgerec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("recommend", help="top-k items for a profile from a bundle and a history", description="Recommend offline for one profile.")
    p.add_argument("--bundle", required=True, help="bundle folder")
    p.add_argument("--db", required=True, help="SQLite history file")
    p.add_argument("--profile", required=True, help="profile id")
    p.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--at", type=float, default=None, help="Unix time of the request (default now)")
    p.add_argument("--device", choices=["tv", "speaker"], default="tv", help="device kind (default tv)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser("record", help="store one event in the history", description="Record one event for a profile.")
    p.add_argument("--bundle", required=True, help="bundle folder (item ids are checked against it)")
    p.add_argument("--db", required=True, help="SQLite history file")
    p.add_argument("--profile", required=True, help="profile id (created on first use)")
    p.add_argument("--item", required=True, help="item id")
    p.add_argument("--kind", default="play", help="play, complete, skip, like, dislike, search or add-to-list")
    p.add_argument("--at", type=float, default=None, help="Unix time (default now)")
    p.add_argument("--value", type=float, default=None, help="watched fraction or rating")
    p.add_argument("--device", choices=["tv", "speaker"], default="tv", help="device kind (default tv)")
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("add-item", help="describe local content (a recording, a file) and make it recommendable",
                       description="Extract features from an audio file, video/image file or frame strip on this device, "
                       "embed it with the bundle's fusion student and store it in the history database.")
    p.add_argument("source", help="audio file (wav/flac/ogg/mp3), video or image file, folder of images, or .npy frames")
    p.add_argument("--bundle", required=True, help="bundle folder or bundle store")
    p.add_argument("--db", required=True, help="SQLite history file")
    p.add_argument("--title", required=True, help="title shown in the UI")
    p.add_argument("--tag", action="append", help="a tag (repeatable)")
    p.add_argument("--kind", choices=["audio", "video"], help="default: audio for audio files, else video")
    p.add_argument("--description", default="", help="programme-guide text")
    p.add_argument("--profile", help="owner profile (default: shared by the household)")
    p.add_argument("--id", help="item id (default: local: plus a hash)")
    p.set_defaults(func=_cmd_add_item)

    p = sub.add_parser("bundle", help="bundle tools", description="Verify bundles, and install them into a store with rollback.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    v = bsub.add_parser("verify", help="check a bundle's signature, manifest, hashes and sizes",
                        description="Verify a bundle folder: its signature (with --trusted-keys, --require-signature or a profile), manifest, hashes and sizes.")
    v.add_argument("bundle", help="bundle folder")
    _trust_args(v)
    v.set_defaults(func=_cmd_bundle_verify)
    v = bsub.add_parser(
        "install", help="verify a bundle, smoke-test it and make it active",
        description="Unpack a bundle archive or folder into the store, verify every file against the manifest, load and run "
                    "its models once, and only then switch the store's active bundle (atomically). On any failure the "
                    "active bundle stays as it was. The previous bundle is kept for `edgerec bundle rollback`.")
    v.add_argument("source", help="bundle archive (<bundle>.tar, as export writes it) or bundle folder")
    v.add_argument("--store", required=True, help="bundle store folder (created when missing); pass it as --bundle to recommend/record")
    v.add_argument("--keep", type=int, default=2, help="previous bundles to keep for rollback (default 2)")
    _trust_args(v)
    v.set_defaults(func=_cmd_bundle_install)
    v = bsub.add_parser(
        "rollback", help="switch back to the previous bundle",
        description="Make the previous installed bundle active again (the newest one that still verifies and answers a "
                    "smoke query) and remove the one that was active.")
    v.add_argument("--store", required=True, help="bundle store folder")
    v.set_defaults(func=_cmd_bundle_rollback)
    v = bsub.add_parser("list", help="list a store's installed bundles",
                        description="List the active bundle, then the previous ones in rollback order.")
    v.add_argument("--store", required=True, help="bundle store folder")
    v.set_defaults(func=_cmd_bundle_list)

    # Device command groups live beside what they drive; each module adds its own subparsers.
    from importlib import import_module

    for name in DEVICE_COMMAND_MODULES:
        import_module(name).register(sub)
    for ep in entry_points(group="edgerec.commands"):
        ep.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgerec`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeError as exc:
        print(f"edgerec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
