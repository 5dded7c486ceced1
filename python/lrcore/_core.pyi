# Type stubs for the compiled core (cpp/bindings/); keep in step with the bind_*.cpp files.
from typing import Any

import numpy as np
from numpy.typing import NDArray

class LimitExceeded(RuntimeError): ...

PLANE_ULPS: float

def blas_corename() -> str: ...
def _set_stitch_failure_for_tests(fail: bool) -> None: ...

class Network:
    def __init__(
        self,
        weights: list[Any],  # dense arrays or (indptr, indices, values, out, in) tuples
        biases: list[NDArray[np.float64]],
        activations: list[str],
        negative_slopes: list[float],
        linear_units: list[int],
    ) -> None: ...
    @property
    def input_dim(self) -> int: ...
    @property
    def output_dim(self) -> int: ...
    @property
    def num_neurons(self) -> int: ...
    @property
    def hidden_sizes(self) -> list[int]: ...
    @property
    def layer_widths(self) -> list[int]: ...
    def forward(self, x: NDArray[np.float64]) -> NDArray[np.float64]: ...
    def pre_activations(self, x: NDArray[np.float64]) -> list[NDArray[np.float64]]: ...

def count_1d(
    net: Network,
    paths: list[NDArray[np.float64]],
    closed: list[bool],
    rtol: float,
    want_patterns: bool,
    num_threads: int,
    max_pieces: int,
    max_memory: float,
) -> dict[str, Any]: ...
def slice_2d(
    net: Network,
    origins: list[NDArray[np.float64]],
    bases: list[NDArray[np.float64]],
    domains: list[NDArray[np.float64]],
    cuts: list[NDArray[np.float64]],
    rtol: float,
    num_threads: int,
    max_regions: int,
    max_memory: float,
) -> list[dict[str, Any]]: ...
