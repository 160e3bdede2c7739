"""Quality on the movielens data: `benchmarks/quality.py movielens` (see there).

    python benchmarks/quality_movielens.py [--seeds 3] [--sasrec-steps 12000]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(dataset="movielens"))
