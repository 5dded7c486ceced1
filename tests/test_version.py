"""lrcore.__version__ comes from the package metadata, which pyproject.toml writes."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import lrcore


def test_version_is_the_one_in_pyproject():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    written = re.search(r'^version = "([^"]+)"$', text, flags=re.MULTILINE)
    assert written is not None
    assert lrcore.__version__ == version("lrcore") == written.group(1)
