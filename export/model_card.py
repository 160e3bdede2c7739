"""The model card: the build report (quality, parity, sizes, cold items, timings) as text."""

from __future__ import annotations


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return [fmt(header), "| " + " | ".join("-" * w for w in widths) + " |", *(fmt(r) for r in rows)]


def _num(v: object, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "-"


def format_card(report: dict) -> str:
    """Markdown for a build report (``work/report.json`` or a bundle's ``model_card``)."""
    out: list[str] = ["# edgerec model card", ""]
    data = report.get("training_data")
    if data:
        out.append(f"data: {data.get('name')} ({data.get('n_items')} items, {data.get('n_interactions')} interactions, sha256 {str(data.get('sha256'))[:12]}...)")
        out.append("")
    quality = report.get("quality", {}).get("rows", [])
    teacher = report.get("teacher", {}).get("quality")
    rows = []
    if teacher:
        rows.append(["teacher (PyTorch, float catalogue)", *(_num(teacher.get(m)) for m in ("ndcg@10", "hr@10", "mrr", "coverage@10")), "1.000"])
    t_ndcg = teacher.get("ndcg@10") if teacher else None
    for r in quality:
        ratio = _num(r["ndcg@10"] / t_ndcg, 3) if t_ndcg else "-"
        rows.append([r["model"], *(_num(r.get(m)) for m in ("ndcg@10", "hr@10", "mrr", "coverage@10")), ratio])
    if rows:
        out += ["## Held-out quality (leave-last-out, students on the int8 catalogue)", ""]
        out += _table(["model", "NDCG@10", "HR@10", "MRR", "coverage@10", "vs teacher"], rows)
        out.append("")
    qual = report.get("quality", {})
    comp = qual.get("comparison")
    if comp:
        out.append(f"{comp['model']} vs the best peer ({comp['best_peer']}), paired bootstrap over {comp['n_users']} users: "
                   f"NDCG@10 {comp['mean_a']:.4f} vs {comp['mean_b']:.4f}, ratio {comp['ratio']:.2f} "
                   f"[{comp['ratio_lo']:.2f}, {comp['ratio_hi']:.2f}] ({comp['level']:.0%} interval)")
        out.append("")
    if qual.get("tuning"):
        out += ["Peers' settings, chosen on the validation target (each user's second-to-last new item):", ""]
        out += _table(["family", "model", "settings", "valid NDCG@10", "chosen"],
                      [[t["family"], t["model"], ", ".join(f"{k}={v}" for k, v in t["settings"].items()), _num(t["valid_ndcg@10"]),
                        "yes" if t["chosen"] else ""] for t in qual["tuning"]])
        out.append("")
    if qual.get("protocol"):
        out += [f"protocol: {qual['protocol']}", ""]
    parity = report.get("parity")
    if parity:
        out += [f"## Parity with PyTorch (min cosine, tolerance {parity['tolerance']})", ""]
        out += _table(["model", "backend", "min cosine", "mean cosine", "inputs"],
                      [[c["model"], c["backend"], _num(c["min_cosine"], 5), _num(c["mean_cosine"], 5), str(c["n"])] for c in parity["checks"]])
        out.append("")
    sizes = report.get("sizes")
    if sizes:
        out += ["## Sizes", ""]
        out += _table(["file", "KiB"], [[k, f"{v / 1024:.1f}"] for k, v in sizes.items()])
        if "students_bytes" in report:
            out.append(f"\nbundled students (int8, both backends): {report['students_bytes'] / 1024:.1f} KiB")
        out.append("")
    cold = report.get("cold_items")
    if cold and cold.get("rows"):
        out += [f"## Cold items ({cold['n_cold_items']} items held out of training, {cold['n_users']} users)", ""]
        out += _table(["model", "NDCG@10", "HR@10"], [[r["model"], _num(r["ndcg@10"]), _num(r["hr@10"])] for r in cold["rows"]])
        out.append("")
    text = report.get("teacher", {}).get("text_onnx")
    if text:
        out.append("text teacher via optimum: " + ", ".join(f"{k} {v['bytes'] / 1024:.0f} KiB" if "bytes" in v else f"{k}: {v}" for k, v in text.items()))
        out.append("")
    timings = report.get("timings")
    if timings:
        out.append("timings: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in timings.items()))
    return "\n".join(out)
