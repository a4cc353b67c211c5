"""``python -m bench.watermark_eval``: runs the evaluation (see ``bench/watermark_eval/__init__.py``)."""

import sys

from bench.watermark_eval.cli import main

sys.exit(main())
