"""The fuzz cases of tests/test_fuzz.py, run longer: more cases per round (``--cases N`` scales
every generator) and round after round with new seeds until a wall-clock budget is spent.

    python benchmarks/fuzz_long.py [--cases 4] [--budget-s 300] [--seed 20261123] [--bundle B]

Each round runs the mutated media files (in a child under RLIMIT_AS, as the test does), the
malformed bundles against a bundle store, the damaged history files, the malformed service
requests and random command lines (tests/test_cli_fuzz.py). Every case must end in a documented edge.errors exception or a correct answer within
the per-case limit; the bundle store's active bundle, the damaged history copies and the
service's canary events must be intact. Writes benchmarks/results/fuzz-<host label>.json with
counts per kind, outcome classes, the slowest case, peak RSS and the intact checks; exits 1 when
any case failed. Without --bundle, a tiny bundle is built first (~1 min; needs the export extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _load_cases():
    spec = importlib.util.spec_from_file_location("edgerec_fuzz_cases", ROOT / "tests" / "test_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _tiny_bundle(work: Path) -> Path:
    from conftest import make_tiny_catalogue, tiny_build_config
    from export.data.contract import load_dataset
    from export.pipeline import build

    dataset = load_dataset(*make_tiny_catalogue(work / "tiny"))
    return build(dataset, work / "bundle", work / "build", tiny_build_config()).bundle


def _load_cli_cases():
    spec = importlib.util.spec_from_file_location("edgerec_cli_fuzz_cases", ROOT / "tests" / "test_cli_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _service(fz, bundle: Path, work: Path, tally, seed: int, scale: int) -> None:
    socket_dir = Path(tempfile.mkdtemp(prefix="efz-"))  # AF_UNIX paths must stay short
    try:
        fz.fuzz_service(bundle, work, socket_dir, tally, seed, scale)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


def main() -> None:
    from edge.bench import host_info

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=4, help="multiplier on every generator's random cases (default 4)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="wall-clock budget in seconds (default 300)")
    ap.add_argument("--seed", type=int, default=None, help="first round's seed (default: the test's); round r uses seed + r")
    ap.add_argument("--bundle", type=Path, default=None, help="a bundle folder with <folder>.tar beside it (default: build a tiny one)")
    ap.add_argument("--host-label", default="vm", help="names the result file (default vm)")
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/fuzz-<host label>.json)")
    args = ap.parse_args()
    # Every damaged history file is logged as a warning when moved aside: thousands of lines.
    logging.getLogger("edge.history").setLevel(logging.ERROR)

    fz = _load_cases()
    cli = _load_cli_cases()
    seed = fz.SEED if args.seed is None else args.seed
    clips = [Path(os.environ.get("EDGEREC_SHARED", ROOT.parent / "shared")) / "datasets" / "audio" / name for name in fz.CLIPS]
    work = Path(tempfile.mkdtemp(prefix="edgerec-fuzz-"))
    t_start = time.monotonic()
    tally = fz.Tally()
    rounds = 0
    peak_child_mb = 0.0
    rss_step: dict = {}
    try:
        bundle = args.bundle or _tiny_bundle(work / "build")
        archive = bundle.with_name(bundle.name + ".tar")
        build_s = time.monotonic() - t_start
        t0 = time.monotonic()
        left = lambda: args.budget_s - (time.monotonic() - t0)  # noqa: E731
        intact: dict[str, bool] = {}
        while left() > 0:
            r_seed, r_work = seed + rounds, work / f"round{rounds}"
            r_work.mkdir()
            steps = [
                ("media", lambda: fz.run_media(clips, r_work / "media", r_seed, args.cases, timeout_s=max(30.0, left() + 60))),
                ("bundle", lambda: fz.fuzz_bundles(bundle, archive, r_work / "bundle", tally, r_seed, args.cases)),
                ("history", lambda: fz.fuzz_histories(r_work / "history", tally, r_seed, args.cases)),
                ("service", lambda: _service(fz, bundle, r_work / "service", tally, r_seed, args.cases)),
                ("cli", lambda: cli.fuzz_cli(cli.make_pools(bundle, r_work / "cli"), tally, r_seed, cli.CASES * args.cases)),
            ]
            for kind, step in steps:
                if left() <= 0:
                    break
                (r_work / kind).mkdir(exist_ok=True)
                tally.intact = {}
                result = step()
                if kind == "media":
                    tally.merge("media", result["kinds"]["media"])
                    if result["peak_rss_mb"] > peak_child_mb:
                        peak_child_mb, rss_step = result["peak_rss_mb"], {**result["largest_rss_step"], "round": rounds}
                for name, ok in tally.intact.items():
                    intact[name] = intact.get(name, True) and ok
                print(f"round {rounds} {kind}: {tally.kinds[kind]['cases']} cases so far, {len(tally.failures(kind))} failures", flush=True)
            shutil.rmtree(r_work, ignore_errors=True)
            rounds += 1
        tally.intact = intact
    finally:
        shutil.rmtree(work, ignore_errors=True)

    doc = tally.to_dict()
    doc.update(
        benchmark="fuzz_long",
        command=" ".join(["python", "benchmarks/fuzz_long.py", *sys.argv[1:]]),
        cases_multiplier=args.cases, budget_s=args.budget_s, first_seed=seed, rounds=rounds,
        fuzz_wall_s=round(time.monotonic() - t0, 1), bundle_build_s=round(build_s, 1),
        peak_rss_mb={"this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "media_child": peak_child_mb,
                     "media_child_largest_step": rss_step},
        host={"cpu": host_info()["cpu"], "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
              "load_average_after": os.getloadavg()},
    )
    out = args.out or ROOT / "benchmarks" / "results" / f"fuzz-{args.host_label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(tally.summary())
    print(f"{doc['total_cases']} cases in {rounds} rounds, {doc['fuzz_wall_s']} s; slowest case {doc['max_case_s']} s; "
          f"peak RSS {doc['peak_rss_mb']['this_process']:.0f} MB (media child {peak_child_mb:.0f} MB); wrote {out}")
    if any(k["failures"] for k in doc["kinds"].values()) or not all(doc["intact"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
