"""Provides ``python -m recommendations``: the CSV command line (no Django, no database)."""

from __future__ import annotations

import sys

from recommendations.cli import main

if __name__ == "__main__":
    sys.exit(main())
