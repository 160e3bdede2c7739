"""``edgerec bundle verify|install|apply-delta|rollback|list``: registered here; bundles and the store live in
:mod:`edge.bundle`."""

from __future__ import annotations

import argparse

from edge.cli.common import DEVICE_PROFILE_HELP, device_profile_arg, load_device_profile, non_negative_int


def _trust(args: argparse.Namespace) -> dict:
    """``trusted_keys``/``require_signature`` from ``--device-profile``, overridden by
    ``--trusted-keys`` and ``--require-signature`` (which can add the requirement, never lift a
    profile's)."""
    from edge.bundle.signing import TrustedKeys

    trust: dict = {"trusted_keys": None, "require_signature": False}
    device = load_device_profile(args.device_profile)
    if device is not None:
        trust = device.bundle_options()
    if args.trusted_keys:
        trust["trusted_keys"] = TrustedKeys.from_dir(args.trusted_keys)
    trust["require_signature"] = trust["require_signature"] or args.require_signature
    return trust


def _limits(args: argparse.Namespace) -> dict:
    """``limits`` for a store from ``--device-profile`` (its ``budgets.bundle_mb``)."""
    device = load_device_profile(args.device_profile)
    return {"limits": device.install_limits()} if device is not None else {}


def _cmd_verify(args: argparse.Namespace) -> int:
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


def _cmd_install(args: argparse.Namespace) -> int:
    from edge.bundle.store import BundleStore

    store = BundleStore(args.store, keep=args.keep, **_trust(args), **_limits(args))
    before = store.history()
    entry = store.install(args.source, allow_downgrade=args.allow_downgrade)
    if before and before[0].id == entry.id:
        print(f"unchanged: {entry.id} is already the active bundle in {args.store}")
        return 0
    print(f"installed: {entry.id} (created {entry.created_at}) from {args.source} is now active: {entry.path}")
    kept = [e.id for e in store.history() if not e.active]
    print(f"rollback: {', '.join(kept) if kept else 'none kept'}")
    return 0


def _cmd_apply_delta(args: argparse.Namespace) -> int:
    from edge.bundle.store import BundleStore

    store = BundleStore(args.store, create=False, keep=args.keep, **_trust(args), **_limits(args))
    before = store.history()
    entry = store.apply_delta(args.delta)
    print(f"applied: {args.delta} onto {before[0].id if before else '?'}: {entry.id} (created {entry.created_at}) is now active: {entry.path}")
    kept = [e.id for e in store.history() if not e.active]
    print(f"rollback: {', '.join(kept) if kept else 'none kept'}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from edge.bundle.store import BundleStore

    store = BundleStore(args.store, create=False, **_trust(args))
    before = store.history()
    entry = store.rollback()
    print(f"rolled back: {entry.id} (created {entry.created_at}) is active again; {before[0].id} was removed")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
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
                   "a bundle's manifest.sig must verify against them (default: the device profile's security.trusted_keys_dir)")
    p.add_argument("--require-signature", action="store_true", help="refuse a bundle without a valid signature from a trusted key")
    device_profile_arg(p, help=DEVICE_PROFILE_HELP + " whose [security] section gives the defaults")


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``bundle`` and its actions to ``sub``."""
    p = sub.add_parser("bundle", help="bundle tools: verify, install with rollback, apply catalogue deltas, list",
                       description="Verify bundles, and install them into a store with rollback.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    v = bsub.add_parser("verify", help="check a bundle's signature, manifest, hashes and sizes",
                        description="Verify a bundle folder: its signature (with --trusted-keys, --require-signature or a "
                                    "device profile), manifest, hashes and sizes.")
    v.add_argument("bundle", help="bundle folder")
    _trust_args(v)
    v.set_defaults(func=_cmd_verify)
    v = bsub.add_parser(
        "install", help="verify a bundle, smoke-test it and make it active",
        description="Unpack a bundle archive or folder into the store, verify every file against the manifest, load and run "
                    "its models once, and only then switch the store's active bundle (atomically). On any failure the "
                    "active bundle stays as it was. The previous bundle is kept for `edgerec bundle rollback`.")
    v.add_argument("source", help="bundle archive (<bundle>.tar, as export writes it) or bundle folder")
    v.add_argument("--store", required=True, help="bundle store folder (created when missing); pass it as --bundle to the other commands")
    v.add_argument("--keep", type=non_negative_int, default=2, help="previous bundles to keep for rollback (default 2)")
    v.add_argument("--allow-downgrade", action="store_true",
                   help="install a bundle whose signed version is below the newest this store installed (refused by "
                        "default: a replayed old bundle); an expired bundle is refused either way")
    _trust_args(v)
    v.set_defaults(func=_cmd_install)
    v = bsub.add_parser(
        "apply-delta", help="apply a catalogue delta to the active bundle, with rollback",
        description="Apply a catalogue delta (`edgerec pipeline delta`: new, removed and changed items, signed and versioned "
                    "like a bundle) to the store's active bundle: the delta must be for the active bundle, newer than any "
                    "bundle the store installed, and change no model and not the feature spec. The target bundle is rebuilt "
                    "in the store's staging area, verified exactly as a full install (signature, every file's hash, "
                    "freshness, a smoke query) and only then made active; on any failure the active bundle stays as it "
                    "was. The previous bundle is kept for `edgerec bundle rollback`.")
    v.add_argument("store", help="bundle store folder (with an active bundle)")
    v.add_argument("delta", help="delta archive (.tar, as `edgerec pipeline delta` writes it)")
    v.add_argument("--keep", type=non_negative_int, default=2, help="previous bundles to keep for rollback (default 2)")
    _trust_args(v)
    v.set_defaults(func=_cmd_apply_delta)
    v = bsub.add_parser(
        "rollback", help="switch back to the previous bundle",
        description="Make the previous installed bundle active again (the newest one that still verifies under today's "
                    "trusted keys and revocations, has not expired and answers a smoke query) and remove the one that was active.")
    v.add_argument("--store", required=True, help="bundle store folder")
    _trust_args(v)
    v.set_defaults(func=_cmd_rollback)
    v = bsub.add_parser("list", help="list a store's installed bundles",
                        description="List the active bundle, then the previous ones in rollback order.")
    v.add_argument("--store", required=True, help="bundle store folder")
    v.set_defaults(func=_cmd_list)
