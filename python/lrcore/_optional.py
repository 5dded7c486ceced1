"""Lazy imports of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

# Module name -> the pip extra of lrcore that installs it. Keep in step with
# [project.optional-dependencies] in pyproject.toml.
EXTRAS = {
    "torch": "torch",
    "pandas": "pandas",
    "matplotlib": "plot",
    "tqdm": "progress",
    "scipy": "experiments",
    "sklearn": "experiments",
    "statsmodels": "experiments",
    "joblib": "experiments",
    "dask": "experiments",
    "pyarrow": "experiments",
}


def optional_import(module_name: str, extra: str | None = None) -> ModuleType:
    """Import an optional dependency or raise an ImportError that says how to get it.

    Parameters
    ----------
    module_name
        The module to import, e.g. ``"pandas"``.
    extra
        The lrcore extra that provides it; defaults to the known one for the module.

    Examples
    --------
    >>> np = optional_import("numpy")
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        top = module_name.split(".")[0]
        extra = extra or EXTRAS.get(top, top)
        msg = (
            f"this feature of lrcore needs the optional dependency {top!r}, which is not "
            f"installed: pip install 'lrcore[{extra}]' (or pip install {top})"
        )
        raise ImportError(msg) from err
