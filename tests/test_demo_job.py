"""`edgerec demo` end to end on a small catalogue: every stage runs and reports its time."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch", reason="edgerec demo runs the server pipeline: pip install 'edgerec[export]'")

from edge.bundle import Bundle
from edge.cli import main


def test_demo_command_runs_server_to_device_and_prints_recommendations(tmp_path, capsys):
    work = tmp_path / "demo"
    assert main(["demo", "--workdir", str(work), "--items", "60", "--users", "40", "--steps", "60", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for stage in ("demo data", "build bundle", "open bundle"):
        assert re.search(rf"\[{stage}\] \d+\.\d\d s", out), stage
    profiles = re.findall(r"profile (u\d+): (\d+) events loaded", out)
    assert len(profiles) == 3 and len({p for p, _ in profiles}) == 3
    assert len(re.findall(r"recommend\(\): user vector [\d.]+ ms, scoring [\d.]+ ms, re-rank [\d.]+ ms, total [\d.]+ ms", out)) == 3
    rows = re.findall(r"^\s+(\d+)\s+(audio|video)\s+(-?\d\.\d{3})\s+(.+)\((because you|popular|something different)", out, flags=re.M)
    assert len(rows) == 30
    assert "home screen of" in out and len(re.findall(r"^  == ", out, flags=re.M)) >= 3
    assert 1 <= len(re.findall(r"^\s+\d+\s+audio\s+-?\d\.\d{3}\s+.+\(for “relaxing jazz for dinner”(?: \(tags [^)]*\))?, audio, up to 20 min", out, flags=re.M)) <= 5
    for model in ("teacher (PyTorch", "student fp32 (PyTorch)", "student int8 (onnx)", "student int8 (tflite)", "popularity", "item-knn", "ease"):
        assert model in out, model
    assert "Parity with PyTorch" in out and "Cold items" in out
    bundle = Bundle.open(work / "bundle")
    assert len(bundle.items) == 60
    assert (work / "history.db").is_file() and str(work / "bundle") in out
