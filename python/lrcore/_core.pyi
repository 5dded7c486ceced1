# Type stubs for the compiled core (cpp/bindings/); keep in step with the bind_*.cpp files.
# Python code calls count_1d and slice_2d only through lrcore/_corecalls.py.
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

class LimitExceeded(RuntimeError): ...

PLANE_ULPS: float
FALLBACK_RTOL: float  # certified slices: the zero tolerance of undecided values

def blas_corename() -> str: ...
def path_extent(paths: list[NDArray[np.float64]]) -> tuple[float, float]: ...
def _set_stitch_failure_for_tests(fail: bool) -> None: ...
def _share_threshold_seconds() -> float: ...
def _set_share_threshold_seconds(seconds: float) -> None: ...

class Network:
    def __init__(
        self,
        # dense arrays, (indptr, indices, values, out, in) CSR tuples, or composite layers
        # ("composite", out, in, [(in_offset, out_offset, part)]) whose parts are dense
        # arrays, CSR tuples, ("diag", scale) or ("conv", weight (4-d), 15 geometry ints)
        weights: list[Any],
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
    def apply_layer(
        self, layer: int, h: NDArray[np.float64], out: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """Layer ``layer``'s affine map at the rows of ``h`` (its input, activated), into ``out``."""
    def can_add_columns(self, layer: int) -> bool:
        """Whether layer ``layer``'s map can add a few of its columns (``add_columns``)."""
    def add_columns(
        self,
        layer: int,
        rows: NDArray[np.int64],
        offsets: NDArray[np.int64],
        cols: NDArray[np.int64],
        coef: NDArray[np.float64],
        out: NDArray[np.float64],
    ) -> None:
        """``out[rows[i]] += Σ coef[e] W[:, cols[e]]`` over ``offsets[i] <= e < offsets[i + 1]``."""
    def norm_bounds(self, num_threads: int = 0) -> list[float]:
        """Per layer (output last): the map's structural bound on ``||W||_2``, or -1."""

class PathBatchArrays(TypedDict):
    """What count_1d returns: a batch of paths as flat arrays (bind_path1d.cpp)."""

    lengths: NDArray[np.float64]  # (paths,)
    num_pieces: NDArray[np.int64]  # (paths,)
    num_distinct: NDArray[np.int64]  # (paths,)
    offsets: NDArray[np.int64]  # (paths + 1,): path i's breakpoints in breakpoints
    breakpoints: NDArray[np.float64]  # (k,) arc lengths
    segment: NDArray[np.int64]  # (k,) polyline segment of each breakpoint
    flip_offsets: NDArray[np.int64]  # (k + 1,): breakpoint j's rows of flip_neurons
    flip_neurons: NDArray[np.int64]  # (m, 2) (layer, unit)
    piece_offsets: NDArray[np.int64]  # (paths + 1,): path i's rows of patterns
    patterns: NDArray[np.uint8] | None  # (pieces, bytes), None unless want_patterns
    vertices_per_layer: NDArray[np.int64]  # (hidden layers,)
    slow_decisions: NDArray[np.int64]  # (paths,) decisions left to the slow path
    exact_coincidences: NDArray[np.int64]  # (paths,) values proven exactly zero
    unresolved_crossings: NDArray[np.int64]  # (paths,) crossings at one float64 position
    uncertified_decisions: NDArray[np.int64]  # (paths,) float64 signs past the budget

class SliceArrays(TypedDict):
    """What slice_2d returns for one slice: its planar partition (bind_slice2d.cpp)."""

    vertices: NDArray[np.float64]  # (V, 2) plane coordinates
    outputs: NDArray[np.float64]  # (V, output_dim)
    face_offsets: NDArray[np.int64]  # (F + 1,)
    face_vertices: NDArray[np.int64]  # (sides,) counter-clockwise per face
    edges: NDArray[np.int64]  # (E, 2) vertex pairs, smaller first
    edge_neurons: NDArray[np.int64]  # (E, 2) (layer, unit), (-1, -1) on the boundary
    patterns: NDArray[np.uint8]  # (F, bytes)
    tiles: int  # tiles the partition was computed in
    merged_crossings: int  # crossings placed at a vertex closer than PLANE_ULPS
    uncertified_decisions: int  # certified: undecided values (the zero tolerance's sign)
    exact_coincidences: int  # certified: values proven exactly 0 (structure, exact tier)
    slow_decisions: int  # certified: decisions the slow path took

def count_1d(
    net: Network,
    paths: list[NDArray[np.float64]],
    closed: list[bool],
    rtol: float | None,
    want_patterns: bool,
    num_threads: int,
    max_pieces: int,
    max_memory: float,
    max_slow_decisions: int,
    max_slow_work: float,
    update_new_vertices: int,
) -> PathBatchArrays: ...
def slice_2d(
    net: Network,
    origins: list[NDArray[np.float64]],
    bases: list[NDArray[np.float64]],
    domains: list[NDArray[np.float64]],
    cuts: list[NDArray[np.float64]],
    rtol: float | None,  # None: certified sign decisions
    num_threads: int,
    max_regions: int,
    max_memory: float,
    max_slow_work: float = 2.0,  # < 0: no budget
) -> list[SliceArrays]: ...
