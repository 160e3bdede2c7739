"""``edgerec bench`` and profiles applied by the runtime, on a real bundle. No timing asserts:
numbers belong to benchmarks."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from edge.bench import STAGES, check_budgets, run_bench, to_markdown
from edge.cli import main
from edge.errors import ProfileError
from edge.profiles import BUDGET_KEYS, SecuritySettings, load_profile


@pytest.fixture(scope="module")
def bundle(request) -> Path:
    """A real bundle: EDGEREC_TEST_BUNDLE (prebuilt, e.g. for the arm64 check, where the export
    side cannot run) or the committed fixture bundle."""
    prebuilt = os.environ.get("EDGEREC_TEST_BUNDLE")
    if prebuilt:
        return Path(prebuilt)
    return Path(request.getfixturevalue("device_bundle").bundle)


def test_bench_reports_every_stage_and_a_verdict_per_budget(bundle, tmp_path):
    report = run_bench(load_profile("x86-dev"), bundle, runs=2, cold_runs=1, workdir=tmp_path)
    assert set(report["stages"]) == set(STAGES)
    for s in report["stages"].values():
        assert s["runs"] == 2 and 0 < s["p50_ms"] <= s["p99_ms"]
    assert set(report["budgets"]) == set(BUDGET_KEYS)
    assert all(isinstance(v["pass"], bool) for v in report["budgets"].values())
    assert report["passed"] == all(v["pass"] for v in report["budgets"].values())
    assert report["cold_start"]["median_ms"] > 0 and report["memory"]["peak_rss_mb"] > 0
    assert report["sizes"]["bundle_bytes"] > 0 and "interest" in report["sizes"]["models_bytes"]
    assert report["host"]["cores"] >= 1 and "onnxruntime" in report["host"]["libraries"]
    assert report["recommendations"] > 0
    md = to_markdown(report)
    for stage in STAGES:
        assert f"| {stage} (ms) |" in md
    assert list(tmp_path.iterdir()) == []  # the clip and the history are cleaned up


def test_bench_command_writes_json_and_reports_a_missing_matplotlib(bundle, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.json"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on a device without the plot extra
    code = main(["bench", "--device-profile", "x86-dev", "--bundle", str(bundle), "--runs", "2", "--cold-runs", "0",
                 "--json", str(out), "--plot", str(tmp_path / "r.png")])
    captured = capsys.readouterr()
    assert code == 1 and "pip install 'edgerec[plot]'" in captured.err
    assert not (tmp_path / "r.png").exists()
    data = json.loads(out.read_text())
    assert set(data["stages"]) == set(STAGES) and data["cold_start"] is None
    assert data["budgets"]["cold_start_ms"]["pass"] is None
    assert "| recommend (ms) |" in captured.out


def test_bench_plot_is_a_png_when_matplotlib_is_installed(bundle, tmp_path):
    pytest.importorskip("matplotlib", reason="the 'plot' extra is not installed")
    assert main(["bench", "--device-profile", "x86-dev", "--bundle", str(bundle), "--runs", "1", "--cold-runs", "0",
                 "--plot", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_verdicts_compare_the_p95():
    prof = load_profile("x86-dev")
    stages = {s: {"p95_ms": prof.budgets[k] * (2 if s == "recommend" else 0.5)} for s, k in STAGES.items()}
    b = check_budgets(prof, stages, cold_ms=None, peak_rss_mb=1.0, bundle_mb=1e6)
    assert b["recommend_ms"]["pass"] is False and b["audio_features_ms"]["pass"] is True
    assert b["cold_start_ms"]["pass"] is None and b["bundle_mb"]["pass"] is False and b["peak_rss_mb"]["pass"] is True


def test_recommender_applies_the_profile_threads_backends_and_history_settings(bundle, tmp_path):
    from edge.recommender import Recommender

    # tv-a55 demands signed bundles; this test is about runtime settings, so lift that here.
    prof = dataclasses.replace(load_profile("tv-a55"), security=SecuritySettings())
    with Recommender.open(bundle, tmp_path / "h.db", device_profile=prof) as rec:
        assert rec.backends == ("tflite", "onnx") and rec.threads == 1
        assert rec.interest.backend == "tflite"
        assert rec.history.synchronous == "FULL" and rec.history.max_events_per_profile == 50000
    prof = dataclasses.replace(load_profile("rpi4"), sqlite_synchronous="NORMAL")
    with Recommender.open(bundle, tmp_path / "h2.db", device_profile=prof) as rec:
        assert rec.backends == ("onnx", "tflite") and rec.threads == 2 and rec.history.synchronous == "NORMAL"


def test_recommender_refuses_a_profile_whose_features_differ_from_the_bundle(bundle, tmp_path):
    from edge.recommender import Recommender

    prof = dataclasses.replace(load_profile("rpi4"), max_frames=4)
    with pytest.raises(ProfileError, match=r"features\.max_frames = 4"):
        Recommender.open(bundle, tmp_path / "h.db", device_profile=prof)
    assert not (tmp_path / "h.db").exists()  # refused before the history is touched
