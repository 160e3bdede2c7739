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
