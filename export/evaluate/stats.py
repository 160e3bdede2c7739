"""Seeds and intervals: a model's quality over several seeds, and a paired bootstrap of one
model against another on the same users.

Both answer "is the difference real?": the standard error of NDCG@10 on ~1,000 users is about
0.007, larger than many differences between models, so a single number from one seed is not a
result. The bootstrap resamples *users* (the unit the test set is drawn from) and keeps the two
models paired on each resampled user.

Usage::

    runs = evaluate_seeds(lambda seed: [MyModel(seed=seed), *build_baselines(seed=seed)], split, seeds=3)
    print(format_seed_table(runs))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from export.data.split import LeaveLastOut
from export.evaluate.report import EvalReport, Scorer, evaluate

__all__ = ["paired_bootstrap", "SeedRuns", "evaluate_seeds", "format_seed_table"]


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Bootstrap interval of ``mean(a) - mean(b)`` and ``mean(a) / mean(b)`` over paired users.

    :param a: per-user metric of the model under test. :param b: the same users' metric for
        its peer (same order). :param level: the interval's coverage (two-sided, percentile).
    :returns: ``{"mean_a", "mean_b", "diff", "diff_lo", "diff_hi", "ratio", "ratio_lo",
        "ratio_hi", "p_a_not_better", "n_users", "n_boot", "seed"}``; ``p_a_not_better`` is the
        share of resamples where ``a`` does not beat ``b``.
    :raises ValueError: on arrays of different lengths or empty arrays.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_bootstrap needs two equal, non-empty 1-d arrays, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ma, mb = a[idx].mean(1), b[idx].mean(1)
    diff = ma - mb
    ratio = np.divide(ma, mb, out=np.full_like(ma, np.inf), where=mb > 0)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        "mean_a": float(a.mean()), "mean_b": float(b.mean()),
        "diff": float(a.mean() - b.mean()), "diff_lo": float(np.percentile(diff, lo)), "diff_hi": float(np.percentile(diff, hi)),
        "ratio": float(a.mean() / b.mean()) if b.mean() > 0 else float("inf"),
        "ratio_lo": float(np.percentile(ratio, lo)), "ratio_hi": float(np.percentile(ratio, hi)),
        "p_a_not_better": float((diff <= 0).mean()), "n_users": int(len(a)), "n_boot": n_boot, "seed": seed, "level": level,
    }


@dataclass
class SeedRuns:
    """One :class:`EvalReport` per seed, and what they say together."""

    seeds: list[int]
    reports: list[EvalReport]
    summary: list[dict] = field(default_factory=list)
    comparison: dict | None = None

    def to_json(self) -> dict:
        """:returns: seeds, the per-model summary (mean and sd of each metric), the paired
        comparison, and each seed's full report."""
        return {"seeds": self.seeds, "summary": self.summary, "comparison": self.comparison,
                "per_seed": [r.to_json() for r in self.reports]}


def _summarise(reports: Sequence[EvalReport]) -> list[dict]:
    names = [r["model"] for r in reports[0].rows]
    out = []
    for name in names:
        rows = [next(x for x in rep.rows if x["model"] == name) for rep in reports]
        entry: dict = {"model": name, "n_seeds": len(rows)}
        for key, value in rows[0].items():
            if key != "model" and isinstance(value, (int, float)):
                vals = np.array([r[key] for r in rows], np.float64)
                entry[key] = float(vals.mean())
                entry[f"{key}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append(entry)
    return out


def evaluate_seeds(make_scorers: Callable[[int], Sequence[Scorer]], split: LeaveLastOut, seeds: int | Sequence[int] = 3,
                   model: str | None = None, peers: Sequence[str] | None = None, k: int = 10,
                   progress: Callable[[str], None] | None = None) -> SeedRuns:
    """Evaluate freshly made scorers once per seed on the same split, then compare.

    :param make_scorers: ``seed -> scorers``; each seed gets new, unfitted models.
    :param seeds: how many (0, 1, ...) or which seeds.
    :param model: the model under test (its name); its per-user NDCG@k, averaged over seeds,
        is bootstrapped against the best of ``peers`` (by mean NDCG@k over seeds).
    :param peers: the names it is compared with (default: every other model).
    :returns: the runs, their summary and, when ``model`` is given, the comparison.
    :raises ValueError: ``model`` or a peer is not among the scorers.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError("give at least one seed")
    reports = []
    for s in seed_list:
        if progress:
            progress(f"seed {s}")
        reports.append(evaluate(make_scorers(s), split, k=k, progress=progress))
    runs = SeedRuns(seed_list, reports, _summarise(reports))
    if model is not None:
        names = [r["model"] for r in runs.summary]
        if model not in names:
            raise ValueError(f"model {model!r} is not among {names}")
        peer_names = list(peers) if peers is not None else [n for n in names if n != model]
        missing = [p for p in peer_names if p not in names]
        if missing or not peer_names:
            raise ValueError(f"peers {missing or peer_names} are not among {names}")
        mean = {r["model"]: r[f"ndcg@{k}"] for r in runs.summary}
        best = max(peer_names, key=mean.__getitem__)
        a = np.mean([rep.per_user[model] for rep in reports], axis=0)
        b = np.mean([rep.per_user[best] for rep in reports], axis=0)
        runs.comparison = {"model": model, "best_peer": best, "metric": f"ndcg@{k}", **paired_bootstrap(a, b)}
    return runs


def format_seed_table(runs: SeedRuns, k: int = 10) -> str:
    """:returns: one line per model, ``mean ± sd`` of HR@k and NDCG@k over the seeds, the means
    of MRR, coverage@k and novelty@k, and the paired comparison if there is one."""
    width = max(len(r["model"]) for r in runs.summary)
    cols = [f"hr@{k}", f"ndcg@{k}"]
    extra = ["mrr", f"coverage@{k}", f"novelty@{k}"]
    lines = ["  ".join([("model").ljust(width), *(c.rjust(17) for c in cols), *(c.rjust(11) for c in extra)])
             + f"   ({len(runs.seeds)} seed(s): {runs.seeds})"]
    for r in runs.summary:
        cells = [f"{r[c]:.4f} ± {r[c + '_sd']:.4f}".rjust(17) for c in cols]
        cells += [(f"{r[c]:.2f}" if c.startswith("novelty") else f"{r[c]:.4f}").rjust(11) for c in extra]
        lines.append("  ".join([r["model"].ljust(width), *cells]))
    c = runs.comparison
    if c:
        lines.append(f"{c['model']} vs {c['best_peer']} (best peer), paired bootstrap over {c['n_users']} users: "
                     f"NDCG diff {c['diff']:+.4f} [{c['diff_lo']:+.4f}, {c['diff_hi']:+.4f}], "
                     f"ratio {c['ratio']:.2f} [{c['ratio_lo']:.2f}, {c['ratio_hi']:.2f}] ({c['level']:.0%})")
    return "\n".join(lines)
