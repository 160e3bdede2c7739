"""Quality on the amazon data: `benchmarks/quality.py amazon` (see there).

    python benchmarks/quality_amazon.py [--seeds 3] [--sasrec-steps 12000]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(dataset="amazon"))
