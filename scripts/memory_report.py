#!/usr/bin/env python3
"""The memory report on a built-in model (default: GPT-2 small); see ``gpuinit/report.py``."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from gpuinit.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
