"""Server commands for ``edgerec``: ``demo``, ``demo-data``, ``eval`` and ``pipeline
build|train|distill|quantize|cold|bundle|delta|sign|keygen`` (named ``pipeline``, not ``export``:
``edgerec export`` is the device's :meth:`Recommender.export <edge.recommender.Recommender.export>`).

Registered through the ``edgerec.commands`` entry point. Heavy imports (torch) happen inside
the handlers, so ``edgerec --help`` stays fast and works without the ``export`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from edge.cli.common import positive_int
from edge.errors import DataError, EdgeError


class MissingExtraError(EdgeError):
    """A server command was run without the ``export`` extra installed."""


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtraError("this command needs the server tools: pip install 'edgerec[export]'") from None


def _cmd_demo(args: argparse.Namespace) -> int:
    _need_torch()
    from export.demo import run_demo

    run_demo(args.workdir, seed=args.seed, n_items=args.items, n_users=args.users, steps=args.steps, workers=args.workers)
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    if args.no_media:
        from export.data.synthetic.scale import generate_scale

        events = args.events if args.events is not None else 20 * args.users
        try:
            s = generate_scale(args.out, args.users, args.items, events, seed=args.seed, fmt=args.format)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        print(f"{s.n_items} items, {s.n_users} users, {s.n_events} events (synthetic, no media)\n  {s.items_csv}\n  {s.interactions}")
        return 0
    if args.events is not None or args.format != "csv":
        raise DataError("--events and --format need --no-media (the media demo's users are simulated event by event)")
    from export.data.synthetic import generate_demo

    d = generate_demo(args.out, seed=args.seed, n_items=args.items, n_users=args.users, workers=args.workers)
    print(f"{d.n_items} items, {d.n_users} users, {d.n_events} events\n  {d.items_csv}\n  {d.interactions_csv}\n  media under {d.media_root}")
    return 0


def _load(args: argparse.Namespace):
    from export.data.amazon import load_amazon
    from export.data.contract import load_dataset
    from export.data.movielens import load_movielens

    if args.movielens and args.amazon:
        raise DataError("give one of --movielens FOLDER and --amazon FOLDER, not both")
    if args.movielens:
        return load_movielens(args.movielens)
    if args.amazon:
        return load_amazon(args.amazon)
    if not (args.interactions and args.items):
        raise DataError("give --interactions and --items (or --movielens FOLDER, or --amazon FOLDER)")
    return load_dataset(args.interactions, args.items, args.media_root)


def _cmd_eval(args: argparse.Namespace) -> int:
    import copy

    from export.data.split import leave_last_out
    from export.evaluate.stats import evaluate_seeds, format_seed_table
    from export.evaluate.tuning import baseline_grids, tune_on_validation

    if args.seeds < 1:
        raise DataError(f"--seeds must be >= 1, got {args.seeds}")
    bundles = args.bundle or []
    if len(bundles) not in (0, 1, args.seeds):
        raise DataError(f"give one --bundle, or one per seed ({args.seeds}), not {len(bundles)}")
    ds = _load(args)
    split = leave_last_out(ds, args.target)
    grids = baseline_grids(split.n_items, sasrec_steps=args.sasrec_steps, threads=args.workers)
    tuning: list[dict] = []
    if args.target == "test":
        # Peers' settings come from the validation target; the test target is scored once.
        valid = leave_last_out(ds, "validation")
        peers, tuning = tune_on_validation(grids, valid) if len(valid.test_users) else ([g[0] for g in grids.values()], [])
    else:
        peers = [s for g in grids.values() for s in g]  # on the validation target: every candidate

    def make(seed: int) -> list:
        scorers = []
        if bundles:
            from export.evaluate.scorers import BundleScorer

            bundle = bundles[seed if len(bundles) > 1 else 0]
            scorers += [BundleScorer(bundle, backend) for backend in args.backends.split(",")]
        for peer in peers:
            fresh = copy.deepcopy(peer)
            if hasattr(fresh, "seed"):
                fresh.seed = seed
            scorers.append(fresh)
        return scorers

    first = make(0)
    model = first[0].name if bundles else None
    peer_names = [s.name for s in first[len(first) - len(peers):]]
    runs = evaluate_seeds(make, split, args.seeds, model=model, peers=peer_names if model else None)
    print(f"{split.name}: {len(split.test_users)} users, {split.n_items} items, target = {split.target}")
    print(format_seed_table(runs))
    if tuning:
        print("\npeers' settings chosen on the validation target:")
        for t in tuning:
            print(f"  {'*' if t['chosen'] else ' '} {t['model']:<32} {t['settings']}  valid ndcg@10 {t['valid_ndcg@10']:.4f}")
    if args.json:
        from edge.atomic import atomic_write

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.json, json.dumps({**runs.to_json(), "tuning": tuning, "target": split.target}, indent=2, default=float))
        print(f"wrote {args.json}")
    return 0


def _build_config(args: argparse.Namespace):
    from export.config import BuildConfig, StudentConfig, TeacherConfig

    teacher = TeacherConfig(steps=args.steps, threads=args.workers, text_model=args.text_model, seed=args.seed)
    student = StudentConfig(interest_steps=args.student_steps, fusion_steps=args.student_steps, threads=args.workers, seed=args.seed)
    return BuildConfig(teacher=teacher, student=student, workers=args.workers, cold_fraction=args.cold_fraction,
                       export_teacher=not args.no_teacher_export, sasrec_steps=args.sasrec_steps,
                       bundle_version=args.bundle_version, valid_days=args.valid_days)


def _work_dir(args: argparse.Namespace) -> Path:
    if args.work:
        return Path(args.work)
    if getattr(args, "out", None):
        return Path(args.out).parent / (Path(args.out).name + ".work")
    raise DataError("give --work FOLDER (where the stages keep their results)")


def _print_card(report: dict) -> None:
    from export.model_card import format_card

    print(format_card(report))


def _say(message: str) -> None:
    # A module-level function, not a lambda: the ranks of --nproc receive it pickled.
    print(f"  [{message}]", flush=True)


def _cmd_export_build(args: argparse.Namespace) -> int:
    _need_torch()
    from export.pipeline import build_distributed, build_rank

    ds = _load(args)  # bad data is one line of error here, before any process starts
    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

        try:
            res = build_distributed(args.nproc, ds, args.out, _work_dir(args), _build_config(args), _say)
        except ChildFailedError as exc:
            first = next(iter(exc.failures.values()))
            raise EdgeError(f"a training process failed (rank {first.local_rank}, exit code {first.exitcode}); "
                            f"its error: {str(first.message)[:300]}") from None
        processes = args.nproc
    else:  # alone, or one rank that torchrun started: rank 0 prints the card
        res = build_rank(ds, args.out, _work_dir(args), _build_config(args), _say)
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        if int(os.environ.get("RANK", "0")) != 0:
            return 0
    _print_card(res.report)
    print(f"bundle written to {res.bundle} (work folder {res.work})" + (f"; trained on {processes} processes" if processes > 1 else ""))
    return 0


def _cmd_export_stage(args: argparse.Namespace) -> int:
    _need_torch()
    from export import pipeline

    ds = _load(args)
    w = pipeline.Work(_work_dir(args), ds, _build_config(args))
    stage = args.pipeline_command
    if stage == "bundle":
        if not args.out:
            raise DataError("pipeline bundle needs --out BUNDLE")
        path = pipeline.stage_bundle(w, args.out)
        print(f"bundle written to {path}")
    else:
        {"train": pipeline.stage_train, "distill": pipeline.stage_distill, "quantize": pipeline.stage_quantize,
         "cold": pipeline.stage_cold}[stage](w)
        _print_card(w.report)
    return 0


def _cmd_export_sign(args: argparse.Namespace) -> int:
    from export.signing import sign_bundle

    kid = sign_bundle(args.bundle, args.key)
    print(f"signed {args.bundle} with key {kid} ({Path(args.bundle) / 'manifest.sig'})")
    if args.archive:
        from edge.bundle.archive import pack_archive

        print(f"archive written to {pack_archive(args.bundle)}")
    return 0


def _cmd_export_delta(args: argparse.Namespace) -> int:
    _need_torch()  # the added items' features come from export.features
    from export.delta import build_delta

    res = build_delta(args.old_bundle, args.new_items, args.out, media_root=args.media_root, key=args.key, version=args.version,
                      target=args.target, valid_days=args.valid_days, workers=args.workers)
    print(f"delta written to {res.delta}: {res.removed} removed, {res.added} added, {res.changed} changed, "
          f"{res.delta_bytes} bytes (the full bundle is {res.target_bytes}), bundle version {res.bundle_version}"
          + (", signed" if args.key else ", unsigned"))
    print(f"full target bundle: {res.target} and {res.target_archive} (for devices that cannot apply the delta)")
    return 0


def _cmd_export_keygen(args: argparse.Namespace) -> int:
    from export.signing import generate_key

    try:
        key = generate_key(args.out_prefix)
    except (FileExistsError, ValueError) as exc:
        raise EdgeError(str(exc)) from None
    except OSError as exc:
        raise EdgeError(f"cannot write the key pair at {args.out_prefix} ({exc.strerror or exc})") from None
    print(f"key {key.key_id}\n  private: {key.private_path} (mode 0600, keep it secret)\n  public:  {key.public_path} "
          "(copy into each device's trusted keys folder)")
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interactions", help="interactions.csv or .parquet (data contract)")
    p.add_argument("--items", help="items.csv (data contract)")
    p.add_argument("--media-root", help="folder media paths are relative to (default: items.csv's folder)")
    p.add_argument("--movielens", metavar="FOLDER", help="read a MovieLens-100K folder instead of CSVs")
    p.add_argument("--amazon", metavar="FOLDER",
                   help="read the amazon-sports folder (Sports_and_Outdoors.txt, S3-Rec format) instead of CSVs")


def _demo_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="demo data seed (default 0)")
    p.add_argument("--items", type=int, default=1500, help="catalogue size (default 1500)")
    p.add_argument("--users", type=int, default=500, help="simulated users (default 500)")
    p.add_argument("--workers", type=int, default=2, help="processes and threads (default 2)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the server commands to the ``edgerec`` parser."""
    p = sub.add_parser("demo", help="end-to-end demo on synthetic data: train, export, recommend offline",
                       description="Make demo data, train a two-tower model, export ONNX, write a bundle, then recommend "
                       "for three users on the device side with stage timings.")
    p.add_argument("--workdir", default="edgerec-demo", help="where data, bundle and history go (default ./edgerec-demo)")
    _demo_data_args(p)
    p.add_argument("--steps", type=int, default=600, help="teacher and student training steps (default 600)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("demo-data", help="write the synthetic demo catalogue and users",
                       description="Write a deterministic synthetic catalogue (audio + video media) and user histories in the data contract.")
    p.add_argument("out", help="output folder")
    _demo_data_args(p)
    p.add_argument("--no-media", action="store_true",
                   help="a log at scale instead: no media files, vectorised users (for the data-path benchmark)")
    p.add_argument("--events", type=positive_int, help="with --no-media: number of events (default 20 per user)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="with --no-media: interaction log format (default csv)")
    p.set_defaults(func=_cmd_demo_data)

    p = sub.add_parser("eval", help="leave-last-out evaluation of bundles against baselines, over seeds, with intervals",
                       description="Evaluate on each user's last new item (or, with --target validation, the one before it): "
                       "HR@10, NDCG@10, MRR, coverage, diversity, novelty. Peers (popularity, Markov chain, item-kNN, EASE, "
                       "ALS with confidence scaling, optionally SASRec) get their settings from the validation target; "
                       "every number is mean +- sd over --seeds, and a bundle is compared with the best peer by a paired "
                       "bootstrap over users.")
    _data_args(p)
    p.add_argument("--bundle", action="append", help="evaluate this bundle through the device runtime; repeat once per "
                   "seed (bundles built with --seed 0, 1, ...) to average over seeds")
    p.add_argument("--target", choices=["test", "validation"], default="test",
                   help="which held-out item to score (default test; tune on validation)")
    p.add_argument("--seeds", type=int, default=1, help="seeds of the stochastic models (default 1)")
    p.add_argument("--sasrec-steps", type=int, default=0, help="also train a SASRec peer this many steps (minutes; default 0: off)")
    p.add_argument("--workers", type=int, default=2, help="threads (default 2)")
    p.add_argument("--backends", default="onnx,tflite", help="comma-separated backends to run the bundle on (default onnx,tflite)")
    p.add_argument("--json", metavar="OUT", help="write the report as JSON")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("pipeline", help="server-side export: teachers, students, int8, bundle, signing",
                       description="Train teachers, distil students, quantise to int8 ONNX/TFLite and write a verified bundle. "
                       "'build' runs every stage; each stage can also run alone on a work folder.")
    esub = p.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    helps = {
        "build": "every stage in order, then print the model card",
        "train": "train the fusion and interest teachers (and export the text teacher with optimum)",
        "distill": "distil the fusion and interest students from the saved teacher",
        "quantize": "export students to ONNX/TFLite fp32 and int8, check parity, score every variant",
        "cold": "cold-item probe: hold out items from training, rank them from content",
        "bundle": "write the bundle from the int8 students and the teacher's catalogue",
    }
    for action, text in helps.items():
        b = esub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        _data_args(b)
        b.add_argument("--out", required=action == "build", help="bundle folder to write")
        b.add_argument("--work", help="work folder for the stages (default: OUT.work next to the bundle)")
        b.add_argument("--steps", type=int, default=None,
                       help="teacher training steps (default: from the data, see export.config.fit_to_data)")
        b.add_argument("--student-steps", type=int, default=2500, help="distillation steps per student (default 2500)")
        b.add_argument("--text-model", help="text teacher: 'wordllama' (or wordllama:64/128/256; the vectors packaged in the wordllama "
                       "wheel), or a pretrained Hugging Face model name or folder, loaded offline (default: train a "
                       "small BERT from scratch)")
        b.add_argument("--sasrec-steps", type=int, default=0,
                       help="train a SASRec peer (full-softmax CE) this many steps for the quality section (minutes; default 0: off)")
        b.add_argument("--cold-fraction", type=float, default=0.1, help="share of items held out for the cold-item probe (0 skips it)")
        b.add_argument("--no-teacher-export", action="store_true", help="skip optimum's ONNX export of the text teacher")
        b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        b.add_argument("--workers", type=int, default=2, help="processes/threads (default 2)")
        if action == "build":
            b.add_argument("--nproc", type=positive_int, default=1,
                           help="train on this many processes of this machine with PyTorch DistributedDataParallel (gloo on "
                                "CPU, NCCL on GPUs), --workers threads shared among them; for several machines run the "
                                "same command under torchrun instead (see README, default 1)")
        b.add_argument("--bundle-version", type=int, default=None,
                       help="the signed bundle version, a whole number that grows with every release; devices refuse one "
                            "below the newest they installed (default: the build's Unix time)")
        b.add_argument("--valid-days", type=float, default=365.0,
                       help="days until the bundle expires; devices refuse to install an expired bundle (default 365)")
        b.set_defaults(func=_cmd_export_build if action == "build" else _cmd_export_stage)

    b = esub.add_parser("sign", help="sign a bundle's manifest with an ed25519 key (writes manifest.sig)",
                        description="Verify a bundle folder, then write manifest.sig: an ed25519 signature over the exact "
                        "manifest.json bytes, which pin every other file's sha256. Devices check it against their trusted keys.")
    b.add_argument("bundle", help="bundle folder")
    b.add_argument("--key", required=True, help="ed25519 private key PEM (from `edgerec pipeline keygen`)")
    b.add_argument("--archive", action="store_true", help="also re-pack <bundle>.tar beside the folder, signature included")
    b.set_defaults(func=_cmd_export_sign)

    b = esub.add_parser(
        "delta", help="a signed catalogue delta from a shipped bundle to a new items.csv",
        description="Diff the new catalogue (the whole items.csv) with OLD_BUNDLE's by item id, embed the new items with "
                    "OLD_BUNDLE's fusion student, and write DELTA: removed ids, added items (metadata, int8 rows, scales), "
                    "changed metadata, and the target bundle's manifest (signed with --key like `pipeline sign`). Devices "
                    "apply it with `edgerec bundle apply-delta STORE DELTA`. Models and the feature spec stay those of "
                    "OLD_BUNDLE. The full target bundle is written too (--target), for devices too far behind to patch. "
                    "A catalogue without changes gives a valid delta that only bumps the version.")
    b.add_argument("old_bundle", metavar="OLD_BUNDLE", help="the bundle folder devices have installed")
    b.add_argument("new_items", metavar="NEW_ITEMS_CSV", help="the full new catalogue, items.csv (data contract)")
    b.add_argument("--out", required=True, metavar="DELTA", help="delta archive to write (.tar)")
    b.add_argument("--media-root", help="folder the media paths of NEW_ITEMS_CSV are relative to (default: its folder)")
    b.add_argument("--key", help="ed25519 private key PEM to sign the target manifest with (from `edgerec pipeline keygen`)")
    b.add_argument("--version", type=int, default=None,
                   help="the target's signed bundle version, above OLD_BUNDLE's (default: now in Unix seconds)")
    b.add_argument("--target", help="folder for the full target bundle (default: DELTA without .tar, plus .bundle)")
    b.add_argument("--valid-days", type=float, default=365.0, help="days until the target expires (default 365)")
    b.add_argument("--workers", type=int, default=2, help="processes for the new items' features (default 2)")
    b.set_defaults(func=_cmd_export_delta)

    b = esub.add_parser("keygen", help="create an ed25519 signing key pair",
                        description="Write OUT_PREFIX.pem (private, mode 0600; keep it on the build host) and OUT_PREFIX.pub "
                        "(copy it into each device's trusted keys folder). Prints the key id.")
    b.add_argument("out_prefix", metavar="OUT_PREFIX", help="path prefix, e.g. keys/2026-a")
    b.set_defaults(func=_cmd_export_keygen)
