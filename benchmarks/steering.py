"""Steering by words: does ``recommend(profile, query="...")`` return items carrying the tag
the query names? Precision@10 of the learned path against BM25 over the same catalogue text,
measured in the same run (issue 16, item 2).

For each dataset a bundle is built (reduced steps, see --help) into a work folder and reused
when it is already there. Queries are made from the catalogue's own tag names:

  (a) exact        the tag name as it is ("jazz", "film-noir")
  (b) variants     what a speech recogniser or a person produces: plural/singular, one typo
                   (a seeded swap, drop or substitution inside the longest word of 4+ letters;
                   tags without one, "war", "sci-fi", get no typo query) and three fixed
                   phrases ("some <tag> for tonight", "play something <tag>", "i'd like a <tag>
                   one please"), each reported on its own and pooled
  (c) description  a word of the item descriptions that is not a tag word (only where the data
                   has descriptions: the demo catalogue); its relevant items are those carrying
                   the genre tag the word co-occurs with most (defined from the catalogue alone)

A relevant item carries the tag; P@10 is the share of the ten returned items that do (tags with
at least 10 items only, so 1.0 is reachable). The device side, four ways:

  * ``recommend()``, fresh profile (``add_profile``, no history: the query alone decides), as
    shipped: the learned query vector plus the tags the query names by stem
    (``edge.ranking.steering.TagMatcher``, since commit 2238919) and the re-ranker;
  * ``recommend()``, profiles with history (the last 20 items of a real user of the data, one
    of 20 users per query in turn): the query blended with the taste (QUERY_WEIGHT);
  * the learned vector alone: the fusion student's query vector (``Recommender._query_vector``)
    ranked by cosine over the bundle's dequantised int8 rows, no tag match, no re-ranker; fresh,
    and blended with the history profile's user vector (``steering.blend``) with its history
    items left out. This is what ``recommend()`` ranked by before the tag match.

A diagnostic row, not a peer: the centroid of the tag's own item vectors (it knows the answer)
ranked by cosine: how well one direction of the bundle's item space picks out the tag at all
(how tag-coherent the collaborative space is; a query vector can still beat the mean).

Peer: ``rank_bm25.BM25Okapi`` over title + tags + description of every item, tokenised as the
text features are (``normalise_text`` + ``\\w+``); it returns only items with a positive score
(a word it has never seen returns nothing, the empty slots count as misses). Kind filters
off. Intervals are bootstrap 95% (2000 resamples over queries, --seed), and a paired interval of
the difference learned - BM25.

    python benchmarks/steering.py [--datasets demo movielens amazon] [--work DIR] [--seed 0]

Writes benchmarks/results/steering-<host>.json. Rating data is read where it lies; work folders
go under --work (default /tmp/edgerec-steering-bench), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "datasets"
_WORD = re.compile(r"\w+", re.UNICODE)
K = 10
MIN_ITEMS = 10  # a tag needs this many items for P@10 = 1 to be reachable
PHRASES = ("some {} for tonight", "play something {}", "i'd like a {} one please")
HISTORY_USERS, HISTORY_EVENTS = 20, 20
TIMESTAMP = 1_780_000_000.0  # fixed request time (2026-05-28, inside every bundle's life)
# Words of the description templates that say nothing about a genre (not chosen as queries).
STOPWORDS = frozenset("a an the and of for with from in on to over by at as is are its it this that their his her "
                      "about into who all every two four one several after before more no not".split())


def words(text: str) -> list[str]:
    from edge.features.text import normalise_text

    return _WORD.findall(normalise_text(text))


# -- building ------------------------------------------------------------------------------

def build_config(name: str, threads: int, seed: int):
    """Between tests/conftest.py's tiny config and the defaults: ~5-8 min per build on 2 cores."""
    from export.config import BuildConfig, StudentConfig, TeacherConfig

    teacher = TeacherConfig(steps=800, hidden=128, layers=1, text_hidden=32, text_layers=1, text_max_len=32,
                            text_items_per_step=32, threads=threads, seed=seed)
    student = StudentConfig(fusion_steps=800, interest_steps=600, fusion_hidden=128, interest_hidden=64,
                            threads=threads, seed=seed)
    return BuildConfig(teacher=teacher, student=student, workers=threads, cold_fraction=0.0, sasrec_steps=0,
                       export_teacher=False, progress=False)


def load(name: str, work: Path, amazon_users: int | None):
    if name == "movielens":
        from export.data.movielens import load_movielens

        return load_movielens(SHARED / "movielens-100k")
    if name == "amazon":
        from export.data.amazon import load_amazon

        return load_amazon(SHARED / "amazon-sports", limit_users=amazon_users)
    if name == "demo":
        from export.data.contract import load_dataset
        from export.data.synthetic import generate_demo

        d = generate_demo(work / "demo-data", seed=0, workers=2)
        return load_dataset(d.interactions_csv, d.items_csv, d.media_root)
    raise SystemExit(f"unknown dataset {name!r}")


def bundle_for(name: str, ds, folder: Path, threads: int, seed: int) -> tuple[Path, dict, float | None]:
    """The dataset's bundle in ``folder`` (built when absent) and the config it was built with."""
    from export.pipeline import build

    bundle = folder / "bundle"
    meta = folder / "build.json"
    if (bundle / "manifest.json").is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        print(f"  [{name}] reusing {bundle} (built in {info['build_s']:.0f} s)", flush=True)
        return bundle, info["config"], None
    cfg = build_config(name, threads, seed)
    t = time.perf_counter()
    res = build(ds, bundle, folder / "build", cfg, say=lambda m: print(f"  [{name}] {m}", flush=True))
    build_s = time.perf_counter() - t
    info = {"config": {**cfg.to_dict(), "spec": asdict(cfg.spec)}, "build_s": build_s, "timings": res.timings}
    meta.write_text(json.dumps(info, indent=2, default=str))
    return Path(res.bundle), info["config"], build_s


# -- queries -------------------------------------------------------------------------------

def plural_variant(tag: str) -> str:
    ws = tag.split(" ")
    last = ws[-1]
    if last.endswith("'s"):
        last = last[:-2]
    elif last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("y") and len(last) > 2 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith("s") and len(last) > 3:
        last = last[:-1]
    elif last.endswith(("ch", "sh", "x")):
        last += "es"
    else:
        last += "s"
    ws[-1] = last
    return " ".join(ws)


def typo_variant(tag: str, rng: np.random.Generator) -> str:
    """One edit inside the tag's longest alphabetic run (first and last letter kept)."""
    runs = [(m.start(), m.end()) for m in re.finditer(r"[^\W\d_]{4,}", tag)]
    if not runs:
        return tag
    s, e = max(runs, key=lambda r: r[1] - r[0])
    w = tag[s:e]
    i = int(rng.integers(1, len(w) - 2)) if len(w) > 3 else 1
    op = int(rng.integers(3))
    if op == 0:  # swap two neighbours
        w2 = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    elif op == 1:  # drop one letter
        w2 = w[:i] + w[i + 1:]
    else:  # substitute a letter
        letters = "abcdefghijklmnopqrstuvwxyz".replace(w[i].lower(), "")
        w2 = w[:i] + letters[int(rng.integers(len(letters)))] + w[i + 1:]
    if w2 == w:
        w2 = w[:i] + w[i + 1:]
    return tag[:s] + w2 + tag[e:]


def make_queries(items, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """Query sets (name -> [{query, tag, relevant rows}]) from the catalogue alone."""
    from edge.features.text import normalise_text

    tag_rows: dict[str, set[int]] = {}
    for row, it in enumerate(items):
        for t in it.tags:
            tag_rows.setdefault(normalise_text(t), set()).add(row)
    tags = sorted(t for t, rows in tag_rows.items() if len(rows) >= MIN_ITEMS)
    rng = np.random.default_rng(seed)
    sets: dict[str, list[dict]] = {"a exact": [], "b plural/singular": [], "b typo": [], "b phrase": []}
    for t in tags:
        rel = tag_rows[t]
        sets["a exact"].append({"query": t, "tag": t, "relevant": rel})
        if not re.search(r"[^\W\d_]", t):
            continue  # a numeric tag (amazon-sports' attribute ids) has no plural, typo or phrase
        sets["b plural/singular"].append({"query": plural_variant(t), "tag": t, "relevant": rel})
        typo = typo_variant(t, rng)
        if typo != t:  # a tag without a word of 4+ letters ("war", "sci-fi") gets no typo query
            sets["b typo"].append({"query": typo, "tag": t, "relevant": rel})
        for p in PHRASES:
            sets["b phrase"].append({"query": p.format(t), "tag": t, "relevant": rel})
    info = {"tags": len(tags), "min_items_per_tag": MIN_ITEMS}
    # (c) description words that are not tag words, mapped to the genre tag (an item's first
    # tag, on the demo catalogue) they co-occur with most.
    if any(it.description and not it.description.startswith("released ") for it in items):
        tag_words = {w for t in tag_rows for w in words(t)}
        genre_of = [normalise_text(it.tags[0]) if it.tags else None for it in items]
        word_rows: dict[str, set[int]] = {}
        for row, it in enumerate(items):
            for w in set(words(it.description)):
                word_rows.setdefault(w, set()).add(row)
        chosen = []
        for w, rows in sorted(word_rows.items()):
            if w in tag_words or w in STOPWORDS or len(w) < 4 or not w.isalpha() or len(rows) < MIN_ITEMS:
                continue
            counts: dict[str, int] = {}
            for r in rows:
                if genre_of[r] is not None:
                    counts[genre_of[r]] = counts.get(genre_of[r], 0) + 1
            if not counts:
                continue
            g, c = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
            if c / len(rows) >= 0.5 and len(tag_rows.get(g, ())) >= MIN_ITEMS:
                chosen.append({"query": w, "tag": g, "relevant": tag_rows[g], "word_items": len(rows)})
        sets["c description word"] = chosen
        info["description_words"] = len(chosen)
    return sets, info


# -- scoring -------------------------------------------------------------------------------

def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    if len(values) == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, len(values), (n, len(values)))
    means = values[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


class BM25Peer:
    def __init__(self, items) -> None:
        from rank_bm25 import BM25Okapi

        self.docs = [words(f"{it.title} {' '.join(it.tags)} {it.description or ''}") for it in items]
        self.bm25 = BM25Okapi(self.docs)

    def top(self, query: str, k: int = K) -> tuple[list[int], bool]:
        """The best ``k`` items with a positive score (fewer, or none, when fewer match: a
        search engine returns nothing for a word it has never seen; the empty slots count as
        misses), ties broken by catalogue order."""
        scores = self.bm25.get_scores(words(query))
        order = np.argsort(-scores, kind="stable")[:k]
        return [int(i) for i in order if scores[i] > 0], bool(np.any(scores > 0))



def precision_table(p: dict[str, list[float]], methods: list[str], rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Mean P@10 per method with its bootstrap interval, and (all but the last, BM25) the paired
    difference to BM25 with its interval."""
    base = np.asarray(p[methods[-1]])
    out = {}
    for m in methods:
        v = np.asarray(p[m])
        lo, hi = bootstrap(v, rng)
        row = {"mean": float(v.mean()), "lo": lo, "hi": hi}
        if m != methods[-1]:
            dlo, dhi = bootstrap(v - base, rng)
            row.update({"diff_vs_bm25": float((v - base).mean()), "diff_lo": dlo, "diff_hi": dhi})
        out[m] = row
    return out

def history_profiles(rec, ds, seed: int) -> list[str]:
    """HISTORY_USERS profiles, each the last HISTORY_EVENTS items of a random user of the data."""
    inter = ds.interactions
    rng = np.random.default_rng(seed + 1)
    users = np.unique(inter.user_codes)
    counts = np.bincount(inter.user_codes)
    eligible = users[counts[users] >= HISTORY_EVENTS]
    picked = rng.choice(eligible, min(HISTORY_USERS, len(eligible)), replace=False)
    names = []
    for n, u in enumerate(picked):
        rows = np.flatnonzero(inter.user_codes == u)
        rows = rows[np.argsort(inter.timestamps[rows], kind="stable")][-HISTORY_EVENTS:]
        name = f"hist{n:02d}"
        rec.add_profile(name)
        for j, r in enumerate(rows):
            item_id = str(inter.item_vocab[inter.item_codes[r]])
            rec.record(name, item_id, "complete", timestamp=TIMESTAMP - 86400 + 60 * j)
        names.append(name)
    return names


def text_probe(rec, items, features_npy: Path, emb: np.ndarray, seed: int, n: int = 300) -> dict:
    """Where the fusion student puts an item described by its text alone (title, tags,
    description; audio and frames zeroed, as a query is) against its bundle row, and the same
    with the item's full features: median cosine and median rank of its own row."""
    from edge.features import text_item_vector

    fusion, b = rec._fusion_model(), rec.bundle
    rows = np.random.default_rng(seed + 2).choice(len(items), min(n, len(items)), replace=False)
    full = np.load(features_npy, mmap_mode="r") if features_npy.is_file() else None
    out: dict = {"items": len(rows)}
    for label, vec in (("text only", lambda r: text_item_vector(items[r].title, items[r].tags, items[r].description or "",
                                                                   spec=b.feature_spec)),
                       ("full features", None if full is None else lambda r: np.asarray(full[r], np.float32))):
        if vec is None:
            continue
        cos, rank = [], []
        for r in rows:
            q = fusion.run({"features": vec(r)[None].astype(np.float32)})[0].reshape(-1)
            q = q / max(float(np.linalg.norm(q)), 1e-12)
            sc = emb @ q
            own = b.index[items[r].item_id]
            cos.append(float(sc[own]))
            rank.append(int((sc > sc[own]).sum()))
        out[label] = {"median_cosine_to_own_row": float(np.median(cos)), "median_rank_of_own_row": float(np.median(rank))}
    return out


def evaluate(name: str, ds, bundle: Path, folder: Path, seed: int) -> dict:
    from edge.context import Context
    from edge.ranking.steering import blend
    from edge.recommender import Recommender

    items = ds.items
    sets, qinfo = make_queries(items, seed)
    row_of = {it.item_id: r for r, it in enumerate(items)}
    bm25 = BM25Peer(items)
    db = folder / "steering-history.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    recs = {"shipped": Recommender.open(bundle, db, threads=1)}
    recs["shipped"].add_profile("fresh")
    hist = history_profiles(recs["shipped"], ds, seed)
    bundle_obj = recs["shipped"].bundle
    emb = np.asarray(bundle_obj.item_embeddings(), np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    to_bundle = np.array([bundle_obj.index[it.item_id] for it in items])
    from_bundle = np.empty(len(items), np.int64)
    from_bundle[to_bundle] = np.arange(len(items))
    ctx = Context.at(TIMESTAMP, "tv")
    bundle_ids = list(bundle_obj.items.item_ids)

    def vector_top(qvec: np.ndarray, user: np.ndarray | None, gone: set[str]) -> list[str]:
        """The fusion student's query vector (blended with the user's as recommend() blends
        it) ranked by cosine over the bundle's dequantised int8 rows: no tag match, no
        re-ranker, the history's own items left out."""
        v = blend(user, qvec)
        order = np.argsort(-(emb @ v), kind="stable")
        return [bundle_ids[i] for i in order[:K + len(gone)] if bundle_ids[i] not in gone][:K]
    methods = ("recommend(), fresh profile", "recommend(), profile with history",
               "learned vector alone, fresh profile", "learned vector alone, blended with history",
               "oracle: centroid of the tag's own item vectors", "BM25 (title+tags+description)")
    rng = np.random.default_rng(seed)
    out: dict = {"items": len(items), "queries": qinfo, "sets": {}}
    latency = []
    pooled: dict[str, list[float]] = {m: [] for m in methods}
    for set_name, qs in sets.items():
        if not qs:
            continue
        p = {m: [] for m in methods}
        no_match = 0
        examples = []
        for qi, q in enumerate(qs):
            rel = q["relevant"]

            def prec(ids: list[str]) -> float:
                return sum(row_of.get(i, -1) in rel for i in ids[:K]) / K

            t = time.perf_counter()
            a = [r.item_id for r in recs["shipped"].recommend("fresh", k=K, query=q["query"], timestamp=TIMESTAMP)]
            latency.append(time.perf_counter() - t)
            h = hist[qi % len(hist)]
            b = [r.item_id for r in recs["shipped"].recommend(h, k=K, query=q["query"], timestamp=TIMESTAMP)]
            qvec = recs["shipped"]._query_vector(q["query"])
            c = vector_top(qvec, None, set())
            state = recs["shipped"]._user_state(h, ctx)
            d = vector_top(qvec, state.vector, state.gone)
            top, matched = bm25.top(q["query"])
            centroid = emb[to_bundle[sorted(rel)]].mean(0)
            oracle = from_bundle[np.argsort(-(emb @ centroid), kind="stable")[:K]]
            no_match += not matched
            vals = (prec(a), prec(b), prec(c), prec(d), sum(int(r) in rel for r in oracle) / K, sum(r in rel for r in top) / K)
            if qi == 0 and set_name == "a exact":
                print(f"  [{name}] e.g. {q['query']!r}: recommend -> {a[:3]}; reason {recs['shipped'].recommend('fresh', k=1, query=q['query'], timestamp=TIMESTAMP)[0].reason!r}", flush=True)
            for m, v in zip(methods, vals):
                p[m].append(v)
            if len(examples) < 4:
                examples.append({"query": q["query"], "tag": q["tag"], **{m: v for m, v in zip(methods, vals)}})
        out["sets"][set_name] = {"n_queries": len(qs), "bm25_no_match": no_match, "examples": examples,
                                 "p@10": precision_table(p, methods, rng)}
        if set_name.startswith("b"):
            for m in methods:
                pooled[m].extend(p[m])
    if pooled[methods[0]]:
        out["sets"]["b pooled (not independent: 5 per tag)"] = {"n_queries": len(pooled[methods[0]]),
                                                                 "p@10": precision_table(pooled, methods, rng)}
    out["text_probe"] = text_probe(recs["shipped"], items, folder / "build" / "features.npy", emb, seed)
    out["learned_latency_ms_median"] = float(np.median(latency) * 1000) if latency else None
    out["random_p@10"] = float(np.mean([len(q["relevant"]) / len(items) for q in sets["a exact"]])) if sets["a exact"] else None
    for r in recs.values():
        r.close()
    return out


def print_table(name: str, res: dict) -> None:
    print(f"\n{name}: {res['items']} items, {res['queries']}; random P@10 ≈ {res['random_p@10']:.3f}")
    probe = res.get("text_probe", {})
    print("  fusion student, item -> its own row: " + "; ".join(
        f"{k}: median cosine {v['median_cosine_to_own_row']:.2f}, median rank {v['median_rank_of_own_row']:.0f}"
        for k, v in probe.items() if isinstance(v, dict)))
    methods = None
    for set_name, s in res["sets"].items():
        if methods is None:
            methods = list(s["p@10"])
            short = ["rec fresh", "rec history", "vector fresh", "vector+history", "oracle centroid", "BM25"]
            print(f"  {'query set':<40} {'n':>4}  " + "  ".join(f"{h:>20}" for h in short))
        cells = [f"{s['p@10'][m]['mean']:.3f} [{s['p@10'][m]['lo']:.2f},{s['p@10'][m]['hi']:.2f}]" for m in methods]
        extra = f"  (BM25 no match {s['bm25_no_match']})" if "bm25_no_match" in s else ""
        print(f"  {set_name:<40} {s['n_queries']:>4}  " + "  ".join(f"{c:>20}" for c in cells) + extra)


def _git_head() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["demo", "movielens"], choices=["demo", "movielens", "amazon"],
                    help="datasets to measure, in order (default: demo movielens)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "edgerec-steering-bench"),
                    help="work folder; <work>/<dataset>/bundle is reused when present (default /tmp/edgerec-steering-bench)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the build, the typos, the history users and the bootstrap (default 0)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="build threads (default: all cores)")
    ap.add_argument("--amazon-users", type=int, default=2000,
                    help="amazon-sports: keep the first N users of the file (the catalogue is their items: 9,619 of "
                         "18,357 for 2000; default 2000, so the build fits in minutes on 2 cores)")
    ap.add_argument("--out", help="JSON output (default benchmarks/results/steering-<host>.json)")
    args = ap.parse_args(argv)
    out = Path(args.out or ROOT / "results" / f"steering-{platform.node() or 'host'}.json")
    work = Path(args.work)
    result = {
        "benchmark": "steering",
        "command": " ".join(["python benchmarks/steering.py", *(argv if argv is not None else sys.argv[1:])]),
        "host": {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "node": platform.node()},
        "seeds": [args.seed], "k": K,
        "config": {"min_items_per_tag": MIN_ITEMS, "phrases": PHRASES, "history_users": HISTORY_USERS,
                   "history_events": HISTORY_EVENTS, "bm25": "rank_bm25.BM25Okapi defaults (k1=1.5, b=0.75, epsilon=0.25)",
                   "bootstrap": "2000 resamples over queries, percentile 95%", "amazon_users": args.amazon_users},
        "datasets": {},
        "notes": [
            "relevant = the item carries the query's tag; kind filters off; tags with >= 10 items",
            "recommend() includes the tag match of edge.ranking.steering.TagMatcher (5-char stems, every word of a tag "
            "among the query's) and lifts the tag cap for queries; 'learned vector alone' is the fusion student's "
            "query vector by cosine over the dequantised int8 rows (what recommend() ranked by before the tag match)",
            "BM25 returns only items with a positive score: a query word absent from every document returns nothing",
            "oracle centroid knows the relevant items: a diagnostic of the item space, not a peer",
            "amazon-sports: the first --amazon-users users of the file (their items form the catalogue); tags are "
            "attribute ids (numbers) and titles one constant, so only query set (a) exists there",
            "movielens descriptions are 'released <date>': no set (c)",
            "the b sets share tags (5 queries per tag), so the pooled interval is too narrow",
        ],
        "git_head": _git_head(),
    }
    t_all = time.perf_counter()
    for name in args.datasets:
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        ds = load(name, folder, args.amazon_users)
        bundle, cfg, build_s = bundle_for(name, ds, folder, args.threads, args.seed)
        res = evaluate(name, ds, bundle, folder, args.seed)
        res.update({"build_config": cfg, "build_s": build_s, "bundle": str(bundle), "wall_s": time.perf_counter() - t})
        result["datasets"][name] = res
        print_table(name, res)
        result["wall_s"] = time.perf_counter() - t_all
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=lambda o: sorted(o) if isinstance(o, set) else float(o)))
        print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
