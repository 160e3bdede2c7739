"""Who is watching (issue 16 item 3): edge.viewer on households simulated from MovieLens-100K.

Households: the eligible users are split in half (fixed seed): validation users and test
users. From each half, random pairs and random triples are drawn (fixed seeds; distinct
households, a user may live in several, as there are only ~160 eligible users per half).
The smoothing knobs are chosen on the validation households; the test households are scored
once with the chosen knobs. The bootstrap resamples households; since users recur across
households, its intervals are somewhat narrower than independent households would give.

Sessions: MovieLens timestamps are *rating* times, not viewing times: a user often rates
dozens of films in one sitting, so "a run of events with gaps < 1 hour" is a rating sitting.
Each member's sittings are ordered in time; the earlier ones (up to ~70 % of the member's
events) are the history the model is built from, the later ones are evaluated. A sitting is
cut into fixed chunks of ``CHUNK`` events, each chunk one evaluated "session"; at most
``MAX_POINTS`` per member, so heavy raters do not dominate their household. Members with
a single sitting have nothing to evaluate that is not from the training sitting, so users
with fewer than two sittings are left out (their count is in the output).

Context: hour and weekday (UTC) of the chunk's first rating; MovieLens has no device, so every
event is "tv" and the device factor is constant (it cannot help here). Item tags = ML-100K
genres through an in-memory catalogue (no trained bundle, no embeddings: ``emb_weight`` is
not exercised). A user rates a film once, so a test session never repeats the member's own
training items: item-identity evidence can only point away from the true member here, unlike
a TV where films and series are rewatched; ``item_weight`` is tuned with that in view.

Scored per household (mean over its evaluated sessions) after 0, 1 and 3 session items:
accuracy of the top guess, mean probability of the true member and its mean log, and the
top guess's mean probability next to its accuracy (calibration); against "always the most
active member" (with its activity share as probability), paired bootstrap over households
(95 %).

    nice python benchmarks/who_is_watching.py [--data ../shared/datasets/movielens-100k] [--seed 0]

Writes benchmarks/results/who_is_watching-vm.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from edge.context import Context, hour_weekday  # noqa: E402
from edge.history import Event, HistoryStore  # noqa: E402
from edge.viewer import ViewerConfig, ViewerModel  # noqa: E402
from export.data.movielens import load_movielens  # noqa: E402
from export.evaluate.stats import paired_bootstrap  # noqa: E402

GAP_S = 3600
CHUNK = 10
MAX_POINTS = 5
TRAIN_SHARE = 0.7
DEPTHS = (0, 1, 3)
#: Households drawn per kind and split (validation, test).
N_HOUSEHOLDS = {2: 400, 3: 300}
# Whole weeks added to every timestamp: 1997-98 ratings would read as "clock not set" to the
# history store (before 2000); a multiple of a week keeps each event's hour and weekday.
SHIFT_S = 210 * 7 * 86400


class _Tags:
    def __init__(self, tags: list[tuple[str, ...]]) -> None:
        self.tags = tags


class Catalogue:
    """The smallest catalogue edge.viewer reads: ``index`` and ``items.tags``."""

    def __init__(self, ids: list[str], tags: list[tuple[str, ...]]) -> None:
        self.index = {i: r for r, i in enumerate(ids)}
        self.items = _Tags(tags)


def member_data(data: Path) -> tuple[Catalogue, dict[str, dict], dict]:
    """Each eligible user's training events and evaluated sessions."""
    ds = load_movielens(data)
    cat = Catalogue([it.item_id for it in ds.items], [it.tags for it in ds.items])
    inter = ds.interactions
    users = np.asarray(inter.user_codes)
    items = np.asarray(inter.item_codes)
    ts = np.asarray(inter.timestamps, dtype=np.float64) + SHIFT_S
    uv, iv = list(inter.user_vocab), list(inter.item_vocab)
    # Stable sort: same-second ratings keep file order.
    order = np.lexsort((np.arange(len(ts)), ts, users))
    members, sittings_per_user, chunk_lengths = {}, [], []
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    for idx in np.split(order, bounds):
        t = ts[idx]
        cuts = np.flatnonzero(np.diff(t) >= GAP_S) + 1
        sittings = np.split(np.arange(len(idx)), cuts)
        sittings_per_user.append(len(sittings))
        if len(sittings) < 2:
            continue
        # Train on whole sittings up to ~TRAIN_SHARE of the events, at least one, not all.
        sizes = np.cumsum([len(s) for s in sittings])
        n_train = int(np.clip(np.searchsorted(sizes, TRAIN_SHARE * len(idx)) + 1, 1, len(sittings) - 1))
        name = f"u{uv[users[idx[0]]]}"
        hour, weekday = hour_weekday(t)
        ev = [Event(name, iv[items[j]], "rate", float(t[k]), None, int(hour[k]), int(weekday[k]), "tv")
              for k, j in enumerate(idx)]
        train = [ev[k] for s in sittings[:n_train] for k in s]
        points = []
        for s in sittings[n_train:]:
            for start in range(0, len(s), CHUNK):
                chunk = s[start:start + CHUNK]
                if len(chunk) >= max(DEPTHS):
                    chunk_lengths.append(len(chunk))
                    points.append((int(hour[chunk[0]]), int(weekday[chunk[0]]), [ev[k].item_id for k in chunk[:max(DEPTHS)]]))
        if points:
            members[name] = {"train": train, "points": points[:MAX_POINTS]}
    stats = {"users": len(sittings_per_user), "users_with_2plus_sittings_and_a_session": len(members),
             "median_sittings_per_user": float(np.median(sittings_per_user)),
             "share_users_one_sitting": float(np.mean(np.array(sittings_per_user) == 1)),
             "median_session_len": float(np.median(chunk_lengths))}
    return cat, members, stats


def households(names: list[str], size: int, n: int, seed: int) -> list[list[str]]:
    """``n`` distinct random households of ``size`` members drawn from ``names`` (a user may
    live in several households, never twice in one)."""
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    while len(out) < n and len(seen) < 50 * n:
        house = sorted(rng.choice(len(names), size=size, replace=False).tolist())
        key = tuple(house)
        if key not in seen:
            seen.add(key)
            out.append([names[i] for i in house])
    return out


def user_split(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Validation users and test users, disjoint: no test member's data tunes a knob."""
    perm = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return sorted(perm[0::2]), sorted(perm[1::2])


def score(hh: list[list[str]], members: dict, cat: Catalogue, cfg: ViewerConfig) -> dict[str, np.ndarray]:
    """Per-household means: accuracy, P(true) and log P(true) per depth, and the baseline's."""
    out: dict[str, list[float]] = {}
    for house in hh:
        model = ViewerModel.from_events({m: members[m]["train"] for m in house}, cat, cfg)
        counts = {m: len(members[m]["train"]) for m in house}
        busiest = max(house, key=lambda m: (counts[m], -house.index(m)))
        acc: dict[str, list[float]] = {}
        for m in house:
            for hour, weekday, items in members[m]["points"]:
                ctx = Context(hour, weekday, "tv")
                for d in DEPTHS:
                    g = model.estimate(ctx, items[:d])
                    p = next(x.probability for x in g if x.profile == m)
                    acc.setdefault(f"acc@{d}", []).append(float(g[0].profile == m))
                    acc.setdefault(f"p_true@{d}", []).append(p)
                    acc.setdefault(f"p_top@{d}", []).append(g[0].probability)
                    acc.setdefault(f"logp@{d}", []).append(float(np.log(max(p, 1e-12))))
                acc.setdefault("baseline_acc", []).append(float(busiest == m))
                acc.setdefault("baseline_p_true", []).append((counts[m] + 1) / sum(c + 1 for c in counts.values()))
        for k, v in acc.items():
            out.setdefault(k, []).append(float(np.mean(v)))
    return {k: np.array(v) for k, v in out.items()}


def tune(val: list[list[str]], members: dict, cat: Catalogue) -> tuple[ViewerConfig, list[dict]]:
    """Two stages on the validation households, by mean log P(true member): the context knobs
    on depth 0 (session knobs cannot change it), then the session knobs on depths 1 and 3."""
    trials = []
    best, best_obj = ViewerConfig(), -np.inf
    for ha, hs, wa in itertools.product((2.0, 8.0, 32.0), (0.0, 0.5, 1.0), (4.0, 16.0, 64.0)):
        cfg = replace(best, hour_alpha=ha, hour_spread=hs, weekday_alpha=wa)
        obj = float(score(val, members, cat, cfg)["logp@0"].mean())
        trials.append({"stage": "context", **asdict(cfg), "val_logp@0": obj})
        if obj > best_obj:
            best_obj, best_cfg = obj, cfg
    best, best_obj = best_cfg, -np.inf
    for tg, iw, sw in itertools.product((20.0, 80.0, 320.0), (0.0, 0.5), (0.5, 1.0, 2.0)):
        cfg = replace(best, tag_gamma=tg, item_weight=iw, session_weight=sw)
        s = score(val, members, cat, cfg)
        obj = float((s["logp@1"].mean() + s["logp@3"].mean()) / 2)
        trials.append({"stage": "session", **asdict(cfg), "val_logp@1,3": obj})
        if obj > best_obj:
            best_obj, best_cfg = obj, cfg
    return best_cfg, trials


def store_matches(house: list[str], members: dict, cat: Catalogue, cfg: ViewerConfig) -> bool:
    """The same household written into a real HistoryStore gives the same estimates."""
    with tempfile.TemporaryDirectory() as tmp, HistoryStore(Path(tmp) / "h.db", synchronous="NORMAL", max_events_per_profile=None) as store:
        for m in house:
            store.add_profile(m)
            store.record_many(members[m]["train"])
        a = ViewerModel.from_history(store, cat, config=cfg)
        b = ViewerModel.from_events({m: members[m]["train"] for m in house}, cat, cfg)
        for m in house:
            for hour, weekday, items in members[m]["points"]:
                ga, gb = a.estimate(Context(hour, weekday), items), b.estimate(Context(hour, weekday), items)
                if [(x.profile, round(x.probability, 9)) for x in ga] != [(x.profile, round(x.probability, 9)) for x in gb]:
                    return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parents[1] / "shared" / "datasets" / "movielens-100k"))
    ap.add_argument("--seed", type=int, default=0, help="household assignment and bootstrap seed (default 0)")
    ap.add_argument("--tune-only", action="store_true", help="choose the knobs on validation and stop (widen a grid without looking at test)")
    ap.add_argument("--out", default=str(ROOT / "results" / "who_is_watching-vm.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    cat, members, data_stats = member_data(Path(args.data))
    names = sorted(members)
    val_users, test_users = user_split(names, args.seed)
    split = {size: (households(val_users, size, N_HOUSEHOLDS[size], args.seed + 10 + size),
                    households(test_users, size, N_HOUSEHOLDS[size], args.seed + 20 + size)) for size in (2, 3)}
    val = split[2][0] + split[3][0]
    cfg, trials = tune(val, members, cat)
    print("chosen on validation:", cfg, flush=True)
    if args.tune_only:
        return
    results = {}
    for size, label in ((2, "pairs"), (3, "triples")):
        test = split[size][1]
        s = score(test, members, cat, cfg)
        row = {"households": len(test), "sessions": int(sum(len(members[m]["points"]) for h in test for m in h))}
        for d in DEPTHS:
            row[f"acc@{d}"] = float(s[f"acc@{d}"].mean())
            row[f"acc@{d}_vs_busiest"] = paired_bootstrap(s[f"acc@{d}"], s["baseline_acc"], seed=args.seed)
            row[f"p_true@{d}"] = float(s[f"p_true@{d}"].mean())
            row[f"p_true@{d}_vs_busiest"] = paired_bootstrap(s[f"p_true@{d}"], s["baseline_p_true"], seed=args.seed)
            row[f"logp@{d}"] = float(s[f"logp@{d}"].mean())
            # Calibration of the top guess: its mean probability against its accuracy.
            row[f"p_top@{d}"] = float(s[f"p_top@{d}"].mean())
        row["baseline_acc"] = float(s["baseline_acc"].mean())
        row["baseline_p_true"] = float(s["baseline_p_true"].mean())
        row["chance"] = 1.0 / size
        results[label] = row
        print(label, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)}, flush=True)
    doc = {
        "benchmark": "who_is_watching", "host": platform.node(), "data": "MovieLens-100K (read in place)",
        "seed": args.seed, "n_boot": 2000, "level": 0.95,
        "setup": {"gap_s": GAP_S, "chunk": CHUNK, "max_points_per_member": MAX_POINTS, "train_share": TRAIN_SHARE, "depths": DEPTHS,
                  "device": "all 'tv' (MovieLens has none): device factor constant", "tags": "ML-100K genres", "embeddings": "none",
                  "sessions": "MovieLens timestamps are rating times: a session is a chunk of a rating sitting (gaps < 1 h)"},
        "data_stats": data_stats,
        "validation_households": {"pairs": len(split[2][0]), "triples": len(split[3][0])},
        "users": {"validation": len(val_users), "test": len(test_users)},
        "chosen_config": asdict(cfg),
        "tuning_trials": trials,
        "test": results,
        "history_store_path_matches": store_matches(split[2][1][0], members, cat, cfg),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out} in {doc['wall_s']} s")


if __name__ == "__main__":
    main()
