"""lrcore works without its optional dependencies and says how to get them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run_hiding(modules: list[str], code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which ``modules`` cannot be imported."""
    prelude = textwrap.dedent(
        f"""
        import sys
        for name in {modules!r}:
            sys.modules[name] = None  # makes `import name` raise ImportError
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_core_api_without_torch_and_pandas():
    done = run_hiding(
        ["torch", "pandas"],
        """
        import numpy as np, lrcore
        net = lrcore.Network.random([2, 8, 8, 1], seed=0)
        r = lrcore.count_1d(net, np.array([[-3.0, 0.0], [3.0, 1.0]]))
        b = lrcore.count_1d(net, [np.array([[-3.0, 0.0], [3.0, 1.0]])])
        assert b[0].num_breakpoints == r.num_breakpoints > 0
        print("ok")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("pandas", "lrcore.count_1d(net, [np.zeros((2, 2)), np.ones((2, 2))]).to_dataframe()"),
        ("torch", "lrcore.Network.from_torch(object())"),
    ],
)
def test_missing_optional_dependency_names_the_extra(module, call):
    done = run_hiding(
        [module],
        f"""
        import numpy as np, lrcore
        net = lrcore.Network.random([2, 4, 1], seed=0)
        try:
            {call}
        except ImportError as err:
            print(err)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert f"lrcore[{module}]" in done.stdout
