"""End to end on a tiny real catalogue: build a bundle, then recommend offline on the device."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the server pipeline needs the export extra: pip install 'edgerec[export]'")

from tests.conftest import tiny_build_config  # noqa: E402

from export.config import StudentConfig
from export.convert import ParityError, check_parity, export_onnx
from export.evaluate import PopularityScorer, evaluate
from export.evaluate.scorers import BundleScorer
from export.models.students import FusionStudent


def test_build_report_has_every_stage_side_by_side(tiny_build):
    r = tiny_build.report
    assert r["teacher"]["log"]["loss_last"] < r["teacher"]["log"]["loss_first"]
    assert {"fusion", "interest"} <= set(r["students"])
    models = [row["model"] for row in r["quality"]["rows"]]
    for name in ("student fp32 (PyTorch)", "student int8 (onnx)", "student int8 (tflite)", "popularity", "markov", "item-knn", "ease"):
        assert name in models, models
    # Peers' settings were chosen on the validation target; the student is compared with the best.
    tuning = r["quality"]["tuning"]
    assert {t["family"] for t in tuning} >= {"item-knn", "ease"}
    for family in {t["family"] for t in tuning}:
        assert sum(t["chosen"] for t in tuning if t["family"] == family) == 1
    comparison = r["quality"]["comparison"]
    assert comparison["model"] == "student int8 (onnx)" and comparison["best_peer"] in models
    assert comparison["diff_lo"] <= comparison["diff"] <= comparison["diff_hi"]
    assert r["cold_items"]["n_cold_items"] == 4 and len(r["cold_items"]["rows"]) == 4
    assert set(r["timings"]) >= {"train_s", "distill_s", "quantize_s", "bundle_s"}


def test_every_exported_variant_passes_parity(tiny_build):
    checks = tiny_build.report["parity"]["checks"]
    got = {(c["model"], c["backend"]) for c in checks}
    want = {(f"{m} {p}", b) for m in ("interest", "fusion") for p in ("fp32", "int8") for b in ("onnx", "tflite")}
    assert got == want
    assert all(c["min_cosine"] >= 0.99 and c["n"] > 0 for c in checks)


def test_int8_files_are_smaller_and_bundle_ships_int8(tiny_build):
    sizes = tiny_build.report["sizes"]
    for m in ("interest", "fusion"):
        assert sizes[f"{m}.int8.onnx"] < sizes[f"{m}.fp32.onnx"]
        assert sizes[f"{m}.int8.tflite"] < sizes[f"{m}.fp32.tflite"]
    from edge.bundle import Bundle

    b = Bundle.open(tiny_build.bundle)
    assert b.manifest["precision"] == "int8"
    card = b.manifest["model_card"]
    assert card["students_bytes"] < 1_000_000 and card["quality"]["rows"]


def test_bundle_carries_both_backends(tiny_build):
    from edge.bundle import Bundle

    b = Bundle.open(tiny_build.bundle)
    for name in ("interest", "fusion"):
        assert set(b.model_paths(name)) == {"onnx", "tflite"}


def test_bundle_beats_popularity_on_planted_groups_on_both_backends(tiny_build):
    report = evaluate([BundleScorer(tiny_build.bundle, "onnx"), BundleScorer(tiny_build.bundle, "tflite"), PopularityScorer()], tiny_build.split)
    rows = {r["model"]: r for r in report.rows}
    onnx, tflite = rows["bundle (onnx, int8 catalogue)"], rows["bundle (tflite, int8 catalogue)"]
    assert onnx["hr@10"] >= rows["popularity"]["hr@10"]
    assert onnx["hr@10"] > 0.5  # 20 candidates of the user's group, top-10
    assert abs(onnx["ndcg@10"] - tflite["ndcg@10"]) < 0.02


def test_failed_parity_is_refused(tmp_path):
    model = FusionStudent(8, StudentConfig(fusion_hidden=16)).eval()
    path = export_onnx(model, {"features": torch.zeros(2, 8)}, tmp_path / "f.onnx")
    inputs = {"features": np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)}
    good = check_parity(model, path, "onnx", inputs, "fusion")
    good.check(0.99)
    with torch.no_grad():
        model.mlp[0].weight.mul_(-1)  # the PyTorch model drifts from the exported file
    bad = check_parity(model, path, "onnx", inputs, "fusion")
    with pytest.raises(ParityError, match=r"fusion on onnx: min cosine .* below the tolerance 0.99"):
        bad.check(0.99)


def test_a_model_failing_parity_is_not_bundled(tiny_dataset, tmp_path, monkeypatch):
    """The pipeline stops at the parity gate: no bundle folder appears."""
    import export.pipeline as pipeline
    from export.convert import Parity

    real = pipeline.check_parity

    def drifting(module, path, backend, inputs, name, batch=None):
        p = real(module, path, backend, inputs, name, batch)
        return Parity(p.model, p.backend, 0.5, 0.5, p.n) if name == "fusion int8" and backend == "tflite" else p

    monkeypatch.setattr(pipeline, "check_parity", drifting)
    cfg = tiny_build_config(cold_fraction=0.0, export_teacher=False)
    cfg.teacher.steps = cfg.student.fusion_steps = cfg.student.interest_steps = 20
    with pytest.raises(ParityError, match="fusion int8 on tflite"):
        pipeline.build(tiny_dataset, tmp_path / "bundle", tmp_path / "work", cfg)
    assert not (tmp_path / "bundle").exists()


def test_text_teacher_loads_a_local_pretrained_model_offline(tiny_build, monkeypatch):
    """A configured model folder is read with local_files_only: no hub access is attempted."""
    from export.models.text_encoder import TextEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_build.work / "teacher_text"
    enc = TextEncoder(["Night show . night", "Day song . day"], 8, pretrained=folder, max_len=16)
    assert enc.pretrained == str(folder)
    out = enc(torch.arange(2))
    assert out.shape == (2, 8) and torch.isfinite(out).all()
    onnx = tiny_build.report["teacher"]["text_onnx"]
    assert onnx["int8"]["bytes"] < onnx["fp32"]["bytes"]  # optimum export + ORTQuantizer ran


def test_student_distillation_tracks_the_teacher(tiny_build):
    """The fusion student learned the teacher's item space (cosine on its training items)."""
    assert tiny_build.report["students"]["fusion"]["train_cosine"] > 0.5


def test_build_also_writes_a_single_file_archive_of_the_bundle(tiny_build):
    import tarfile

    archive = tiny_build.bundle.with_name(tiny_build.bundle.name + ".tar")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "manifest.json"
    assert all(m.isreg() and not m.name.startswith(("/", "..")) for m in members)
    on_disk = {p.relative_to(tiny_build.bundle).as_posix() for p in tiny_build.bundle.rglob("*") if p.is_file()}
    assert set(names) == on_disk
