"""edgerec's tests. A regular package, so `tests.conftest` is ours even when a dependency
(xdsl, pulled in by litert-converter) installs a top-level `tests` package of its own."""
