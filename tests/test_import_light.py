"""The device runtime must not drag in server-only libraries."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "jax", "tensorflow", "optimum", "litert_torch")


def test_import_edge_and_device_modules_load_no_server_libraries():
    code = (
        "import sys, edge, edge.recommender, edge.features, edge.history, edge.bundle, edge.cli;"
        "edge.Recommender;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_edge_exports_only_facade_errors_and_version():
    import edge

    assert set(edge.__all__) == {"Recommender", "EdgeError", "DataError", "FeatureError", "BackendError", "HistoryError", "BundleError", "ProfileError", "__version__"}
    for name in edge.__all__:
        assert getattr(edge, name) is not None
    assert all(issubclass(getattr(edge, n), edge.EdgeError) for n in edge.__all__ if n.endswith("Error"))


def test_recommending_does_not_load_decoders():
    """Opening a bundle and recommending need no scipy, decoders or speech features: a device
    pays for them only when it describes new content."""
    code = (
        "import sys, edge.recommender, edge.bundle, edge.bundle.store;"
        "from edge.features import FeatureSpec; FeatureSpec().hash();"
        "print(sorted(m for m in ('scipy', 'soundfile', 'python_speech_features', 'av') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    code = "import sys; from edge.features import mfcc, resample, AudioStream; print(callable(mfcc) and callable(resample))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"
