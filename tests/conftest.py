"""Hypothesis profiles: "ci" (default, derandomised, modest) and "dev" (more examples).

Pick one with the environment variable HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import contextlib
import os
import warnings

from hypothesis import HealthCheck, settings

from support import FUZZ_SUMMARY

# When a property fails, Hypothesis imports libcst (to offer the failing example as a
# patch) inside pytest's report hook, where `filterwarnings = error` turns libcst's
# DeprecationWarning about mypy_extensions into an INTERNALERROR that hides the real
# failure. Importing it once here, with that warning silenced, keeps reports readable.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import libcst  # noqa: F401

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=300,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter, config):
    """Say how many inputs the fuzz tests tried (tests/test_fuzz.py)."""
    summary = config.stash.get(FUZZ_SUMMARY, None)
    if summary is not None:
        terminalreporter.write_line(summary)
