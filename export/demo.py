"""``edgerec demo``: the whole product on synthetic data, server to device, in one command.

Stages: make the demo catalogue -> train and export a bundle (server) -> open the bundle and a
fresh SQLite history, load three users' histories, recommend offline (device). Every stage
prints its time; the files stay in the work directory for a look afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge.context import Context
from edge.history import Event
from edge.recommender import Recommender
from export.data.contract import load_dataset
from export.config import BuildConfig, StudentConfig, TeacherConfig
from export.data.synthetic import generate_demo
from export.model_card import format_card
from export.pipeline import build



def run_demo(workdir: str | Path = "edgerec-demo", seed: int = 0, n_items: int = 1500, n_users: int = 500, steps: int = 600, workers: int = 2, users: int = 3, k: int = 10, say: Callable[[str], None] = print) -> dict:
    """Run the demo and return its stage timings and recommendations (also printed via ``say``)."""
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str, t0: float) -> None:
        timings[name] = time.perf_counter() - t0
        say(f"  [{name}] {timings[name]:.2f} s")

    say(f"edgerec demo: work directory {work}")
    say("server: synthetic catalogue (demo data, not a quality benchmark)")
    t = time.perf_counter()
    demo = generate_demo(work / "data", seed=seed, n_items=n_items, n_users=n_users, workers=workers)
    ds = load_dataset(demo.interactions_csv, demo.items_csv, demo.media_root)
    stage("demo data", t)
    say(f"  {len(ds.items)} items, {len(set(ds.interactions.user_ids))} users, {len(ds.interactions)} events")

    say("server: features -> teachers -> distilled students -> int8 ONNX + TFLite -> parity -> quality -> bundle")
    t = time.perf_counter()
    cfg = BuildConfig(
        teacher=TeacherConfig(steps=steps, threads=workers),
        student=StudentConfig(fusion_steps=steps, interest_steps=steps, threads=workers),
        workers=workers,
        cold_steps=max(1, steps // 3),
    )
    result = build(ds, work / "bundle", work / "build", cfg, say=lambda m: say(f"    {m}"))
    stage("build bundle", t)
    say(format_card(result.report))

    say("device: open bundle, load histories into SQLite, recommend offline")
    db_path = work / "history.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    t = time.perf_counter()
    rec = Recommender.open(result.bundle, db_path)
    stage("open bundle", t)
    split = result.split
    chosen = [int(u) for u in split.test_users[np.linspace(0, len(split.test_users) - 1, users).round().astype(int)]]
    inter = ds.interactions
    out: dict = {"workdir": str(work), "bundle": str(result.bundle), "timings": timings, "users": {}}
    try:
        for u in chosen:
            uid = split.user_ids[u]
            target_ts = int(split.test_timestamps[list(split.test_users).index(u)])
            sel = (inter.user_ids == uid) & (inter.timestamps < target_ts)
            events = [
                Event(uid, i, str(e), float(ts), None if np.isnan(v) else float(v))
                for i, ts, e, v in zip(inter.item_ids[sel], inter.timestamps[sel], inter.events[sel], inter.values[sel])
            ]
            t = time.perf_counter()
            rec.history.add_profile(uid)
            rec.history.record_many(events)
            load_s = time.perf_counter() - t
            ctx = Context.at(target_ts, "tv")
            recs = rec.recommend(uid, k=k, context=ctx)
            target = split.item_ids[int(split.test_items[list(split.test_users).index(u)])]
            say(f"\n  profile {uid}: {len(events)} events loaded in {load_s * 1000:.1f} ms; context {ctx.hour:02d}:00 weekday {ctx.weekday} on a TV")
            say(f"  recommend(): user vector {rec.timings['user_vector_s'] * 1000:.2f} ms, scoring {rec.timings['scoring_s'] * 1000:.2f} ms, "
                f"re-rank {rec.timings['rerank_s'] * 1000:.2f} ms, total {rec.timings['total_s'] * 1000:.2f} ms")
            say(f"  {'#':>2}  {'kind':<5} {'score':>6}  title  (reason)")
            for n, r in enumerate(recs, 1):
                hit = "  <- watched next" if r.item_id == target else ""
                say(f"  {n:>2}  {r.kind:<5} {r.score:6.3f}  {r.title}  ({r.reason}){hit}")
            out["users"][uid] = [r.__dict__ for r in recs]
        uid = split.user_ids[chosen[0]]
        ctx = Context.at(int(split.test_timestamps[list(split.test_users).index(chosen[0])]), "tv")
        rows = rec.home(uid, context=ctx, per_row=4)
        say(f"\n  home screen of {uid} (Recommender.home, {rec.timings['total_s'] * 1000:.2f} ms):")
        for row in rows:
            say(f"  == {row.title}  ({row.reason})")
            for r in row.items:
                say(f"       {r.kind:<5} {r.title}  ({r.reason})")
        out["home"] = [{"kind": row.kind, "title": row.title, "items": [r.item_id for r in row.items]} for row in rows]
        query = "relaxing jazz for dinner"
        steered = rec.recommend(uid, k=5, context=Context.at(ctx.timestamp, "speaker"), query=query, kind="audio", max_duration_s=1200)
        say(f"\n  on a speaker, {uid} asks for \"{query}\" (audio, up to 20 min; {rec.timings['total_s'] * 1000:.2f} ms):")
        for n, r in enumerate(steered, 1):
            say(f"  {n:>2}  {r.kind:<5} {r.score:6.3f}  {r.title}  ({r.reason})")
        out["steered"] = {"query": query, "items": [r.item_id for r in steered]}
    finally:
        rec.close()
    timings["total"] = time.perf_counter() - started
    say(f"\ndone in {timings['total']:.1f} s")
    say(f"files: data {demo.root}\n       bundle {result.bundle}\n       history {db_path}")
    return out
