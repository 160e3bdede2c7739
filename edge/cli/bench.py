"""``edgerec bench``: registered here; the measurements live in :mod:`edge.bench`."""

from __future__ import annotations

import argparse
import sys

from edge.cli.common import DEVICE_PROFILE_HELP, device_profile_arg


def _cmd_bench(args: argparse.Namespace) -> int:
    from edge.bench import run_bench, to_markdown, write_json, write_plot
    from edge.profiles import load_profile

    profile = load_profile(args.device_profile)
    report = run_bench(profile, args.bundle, runs=args.runs, cold_runs=args.cold_runs)
    print(to_markdown(report), end="")
    if args.json:
        print(f"# JSON: {write_json(report, args.json)}")
    status = 0
    if args.plot:
        try:
            print(f"# chart: {write_plot(report, args.plot)}")
        except ImportError as exc:
            print(f"edgerec bench: no chart written: {exc}", file=sys.stderr)
            status = 1
    if args.strict and not report["passed"]:
        status = 3
    return status


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``bench`` to ``sub``."""
    p = sub.add_parser(
        "bench", help="measure latency, memory and sizes on this host against a device profile's budgets",
        description="Time every device stage (audio and frame features, fusion and interest students, catalogue "
                    "scoring, the whole recommend() with a 200-event history), cold start, peak RSS and sizes for a "
                    "bundle run as a device profile says, and check the profile's budgets (p95). Needs only the base "
                    "install; --plot needs matplotlib (the 'plot' extra). Prints a markdown table.")
    device_profile_arg(p, required=True, help=DEVICE_PROFILE_HELP + ": the hardware whose settings and budgets apply")
    p.add_argument("--bundle", required=True, help="bundle folder or bundle store")
    p.add_argument("--runs", type=int, default=50, help="timed calls per stage (default 50)")
    p.add_argument("--cold-runs", type=int, default=3, help="fresh processes timed for cold start (default 3; 0 skips)")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="write a bar chart (needs matplotlib)")
    p.add_argument("--strict", action="store_true", help="exit with status 3 when a budget fails")
    p.set_defaults(func=_cmd_bench)
