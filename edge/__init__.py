"""edgerec's device runtime: offline recommendations on a TV or speaker.

Import stays light: no torch, no transformers. The facade is :class:`Recommender`.
"""

from edge.errors import BackendError, BundleError, DataError, EdgeError, FeatureError, HistoryError, ProfileError

__version__ = "0.1.0"
__all__ = [
    "Recommender",
    "EdgeError",
    "DataError",
    "FeatureError",
    "BackendError",
    "HistoryError",
    "BundleError",
    "ProfileError",
    "__version__",
]


def __getattr__(name: str):
    # Lazy, so `import edge` (and `edgerec --help`) does not load onnxruntime.
    if name == "Recommender":
        from edge.recommender import Recommender

        return Recommender
    raise AttributeError(f"module 'edge' has no attribute {name!r}")
