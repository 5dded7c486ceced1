"""The examples in the package's docstrings run and print what they say.

Every docstring with ``>>>`` examples in python/lrcore is one test. Examples that use an
optional dependency are skipped where it is not installed; examples marked
``# doctest: +SKIP`` (long runs that write files or print pages) are skipped by doctest.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import lrcore

#: Text in an example -> the optional module it needs.
NEEDS = {"torch": "torch", "to_dataframe": "pandas", ".plot(": "matplotlib"}


def _docstring_tests() -> list[doctest.DocTest]:
    # Not lrcore.__main__: importing it runs the command line.
    modules = ["lrcore"] + [
        info.name
        for info in pkgutil.walk_packages(lrcore.__path__, prefix="lrcore.")
        if not info.name.endswith(".__main__")
    ]
    finder = doctest.DocTestFinder()
    found = []
    for name in sorted(modules):
        module = importlib.import_module(name)
        found += [t for t in finder.find(module, name) if t.examples]
    return found


TESTS = _docstring_tests()


def test_the_examples_are_found():
    names = {t.name for t in TESTS}
    assert {"lrcore", "lrcore.path1d.count_1d", "lrcore.slice2d.slice_2d"} <= names
    assert "lrcore.torch.RegionTracker" in names


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_docstring_examples(test):
    source = "\n".join(example.source for example in test.examples)
    for marker, module in NEEDS.items():
        if marker in source and importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    output: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=output.append, clear_globs=True)
    assert result.failed == 0, "".join(output)
