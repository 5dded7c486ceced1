"""``python -m lrcore``: the same as the ``lrcore`` command."""

from __future__ import annotations

import sys

from lrcore.cli import main

sys.exit(main())
