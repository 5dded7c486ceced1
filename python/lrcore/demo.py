"""A short, deterministic tour of exact 1D linear-region counting.

``lrcore demo`` (or :func:`run_demo`) builds small ReLU MLPs, counts their exact
breakpoints, pieces and distinct activation regions along a straight segment and
along a circle (a closed polyline), and prints the numbers as a table:

- a random 2D network (torch-default initialisation), before and after a few hundred
  full-batch Adam steps on a radial target on the plane (needs torch);
- a random network on a higher-dimensional input, where the circle lies in a random
  2-plane through the origin.

Everything is seeded, so one seed gives one output.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import
from lrcore.network import Network
from lrcore.path1d import count_1d

__all__ = ["DemoRow", "demo_paths", "format_table", "run_demo", "train_mlp"]

# The circle is a closed polyline with this many vertices: counts are exact along this
# polygon (which lies within 0.002% of the true circle's radius).
CIRCLE_VERTICES = 512
CIRCLE_RADIUS = 0.8
# A diagonal of the training square [-1, 1]^2 (or its analogue in higher dimensions).
SEGMENT_HALF_LENGTH = math.sqrt(2.0)
# Peak density is the largest density over windows of this fraction of the length.
PEAK_WINDOW_FRACTION = 0.1


@dataclass(frozen=True)
class DemoRow:
    """Exact counts for one network along one path."""

    network: str
    path: str
    length: float
    breakpoints: int
    pieces: int
    distinct: int
    density: float
    peak_density: float
    walk_breakpoints: int | None = None  # from lrcore.reference.walk_1d when verifying


def demo_paths(input_dim: int, seed: int) -> dict[str, tuple[NDArray[np.float64], bool]]:
    """The segment and the circle used by the demo, as ``name -> (points, closed)``.

    For ``input_dim == 2`` the segment is the diagonal from (-1, -1) to (1, 1) and the
    circle is centred at the origin in the input plane. Otherwise both lie in a random
    2-plane through the origin (orthonormal basis drawn from ``seed``).

    Examples
    --------
    >>> paths = demo_paths(2, seed=0)
    >>> paths["segment"][0].tolist(), paths["circle"][1]
    ([[-1.0, -1.0], [1.0, 1.0]], True)
    """
    if input_dim == 2:
        direction = np.array([1.0, 1.0]) / math.sqrt(2.0)
        circle_basis = np.eye(2)
    else:
        rng = np.random.default_rng([seed, input_dim])
        basis, _ = np.linalg.qr(rng.standard_normal((input_dim, 2)))
        direction = basis[:, 0]
        circle_basis = basis.T
    segment = np.stack([-SEGMENT_HALF_LENGTH * direction, SEGMENT_HALF_LENGTH * direction])
    angles = 2.0 * np.pi * np.arange(CIRCLE_VERTICES) / CIRCLE_VERTICES
    circle = CIRCLE_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1) @ circle_basis
    return {"segment": (segment, False), "circle": (circle, True)}


def radial_target(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """The regression target on the plane: rings, cos(3π‖x‖).

    It varies along the diagonal segment and is constant on every circle around the
    origin, which makes the before/after comparison easy to read.
    """
    radius = np.linalg.norm(np.asarray(points, dtype=np.float64), axis=-1)
    return np.asarray(np.cos(3.0 * np.pi * radius), dtype=np.float64)


def train_mlp(
    width: int, depth: int, steps: int, seed: int, learning_rate: float = 3e-3
) -> tuple[Network, Network, float]:
    """Train a 2→[width]×depth→1 ReLU MLP on :func:`radial_target` with torch.

    Full-batch Adam on 2048 seeded uniform points of [-1, 1]^2, on the CPU with one
    thread so that the result is reproducible. The global torch RNG state is left as it
    was.

    Returns
    -------
    before, after : lrcore.Network
        The network at initialisation and after training.
    loss : float
        The final training mean squared error.
    """
    torch = optional_import("torch", "torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[Any] = []
            in_features = 2
            for _ in range(depth):
                layers += [torch.nn.Linear(in_features, width), torch.nn.ReLU()]
                in_features = width
            layers.append(torch.nn.Linear(in_features, 1))
            model = torch.nn.Sequential(*layers).double()
            before = Network.from_torch(model)

            generator = np.random.default_rng([seed, 2])
            points = generator.uniform(-1.0, 1.0, size=(2048, 2))
            inputs = torch.from_numpy(points)
            targets = torch.from_numpy(radial_target(points))[:, None]
            optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
            progress_bar = _progress(steps)
            for _ in progress_bar:
                optimiser.zero_grad()
                loss = torch.mean((model(inputs) - targets) ** 2)
                loss.backward()
                optimiser.step()
            _close(progress_bar)
            with torch.no_grad():
                loss = torch.mean((model(inputs) - targets) ** 2)
        return before, Network.from_torch(model), float(loss)
    finally:
        torch.set_num_threads(threads)


def _progress(steps: int) -> Any:
    # tqdm is optional: without it (or off a terminal) the loop runs silently.
    try:
        tqdm_auto = optional_import("tqdm.auto", "progress")
    except ImportError:
        return range(steps)
    return tqdm_auto.tqdm(
        range(steps), desc="training", leave=False, disable=None, file=sys.stderr
    )


def _close(progress_bar: Any) -> None:
    with contextlib.suppress(AttributeError):
        progress_bar.close()


def measure(network: Network, label: str, seed: int, verify: bool = False) -> list[DemoRow]:
    """Count exactly along the demo paths of the network's input dimension.

    With ``verify``, also count with the slow numpy walk of :mod:`lrcore.reference`.
    """
    rows = []
    for name, (points, closed) in demo_paths(network.input_dim, seed).items():
        result = count_1d(network, points, closed=closed)
        window = PEAK_WINDOW_FRACTION * result.length
        peak = float(np.max(result.density(window))) if result.num_breakpoints else 0.0
        walk_breakpoints = None
        if verify:
            from lrcore.reference import walk_1d

            walk = walk_1d(
                network.weights,
                network.biases,
                points,
                closed=closed,
                activations=network.activations,
                negative_slopes=network.negative_slopes,
            )
            walk_breakpoints = walk.num_breakpoints
        rows.append(
            DemoRow(
                network=label,
                path=name,
                length=float(result.length),
                breakpoints=int(result.num_breakpoints),
                pieces=int(result.num_pieces),
                distinct=int(result.num_distinct),
                density=float(result.global_density),
                peak_density=peak,
                walk_breakpoints=walk_breakpoints,
            )
        )
    return rows


def format_table(rows: list[DemoRow]) -> str:
    """Render rows as an aligned plain-text table."""
    header: tuple[str, ...] = (
        "network",
        "path",
        "length",
        "breakpoints",
        "pieces",
        "distinct",
        "density",
        "peak density",
    )
    cells: list[tuple[str, ...]] = [
        (
            row.network,
            row.path,
            f"{row.length:.3f}",
            str(row.breakpoints),
            str(row.pieces),
            str(row.distinct),
            f"{row.density:.2f}",
            f"{row.peak_density:.2f}",
        )
        for row in rows
    ]
    if any(row.walk_breakpoints is not None for row in rows):
        header = (*header, "walk")
        cells = [
            (*c, "-" if row.walk_breakpoints is None else str(row.walk_breakpoints))
            for c, row in zip(cells, rows)
        ]
    widths = [max(len(text) for text in column) for column in zip(header, *cells)]

    def line(texts: tuple[str, ...]) -> str:
        left = texts[:2]
        right = texts[2:]
        parts = [t.ljust(w) for t, w in zip(left, widths[:2])]
        parts += [t.rjust(w) for t, w in zip(right, widths[2:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


EXPLANATION = """\
How to read this
  breakpoints   points of the path where the activation pattern (which ReLUs are on)
                changes; computed exactly, layer by layer, in float64.
  pieces        maximal stretches of constant pattern: breakpoints + 1 on a segment,
                breakpoints on a closed curve (the last piece wraps around).
  distinct      distinct patterns met: fewer than pieces when the path re-enters a
                region it has left.
  density       breakpoints per unit length; peak density is the largest density over
                windows of {window:.0%} of the path length.
The network is affine on every piece, so pieces bound how wiggly it can be along the path."""

TRAINING_EXPLANATION = """\
Training on the rings target cos(3π‖x‖) tends to add breakpoints where the target bends
(across the rings, along the diagonal) more than along the circle, on which the target is
constant."""


def run_demo(
    *,
    seed: int = 0,
    width: int = 32,
    depth: int = 3,
    steps: int = 300,
    train: bool = True,
    high_dim: int = 16,
    verify: bool = False,
    file: TextIO | None = None,
) -> list[DemoRow]:
    """Build, (optionally) train and measure the demo networks; print a table.

    Parameters
    ----------
    seed : int
        Seed for every network, path and training set.
    width, depth : int
        Hidden width and number of hidden layers of every network.
    steps : int
        Adam steps for the trained 2D network.
    train : bool
        Train the 2D network with torch. Without torch installed, or with
        ``train=False``, a seeded random 2D network is measured instead.
    high_dim : int
        Input dimension of the higher-dimensional random network.
    verify : bool
        Also count every breakpoint with the slow numpy walk of
        :mod:`lrcore.reference` (column "walk") and report disagreements.
    file : text stream, optional
        Where to print (default: standard output).

    Returns
    -------
    list of DemoRow
        The rows of the printed table.

    Examples
    --------
    >>> rows = run_demo(seed=0, width=8, depth=2, train=False)  # doctest: +SKIP
    """
    out = sys.stdout if file is None else file
    if width < 1 or depth < 1 or steps < 0 or high_dim < 1:
        raise ValueError(
            f"width, depth and high_dim must be positive and steps >= 0, got "
            f"width={width}, depth={depth}, steps={steps}, high_dim={high_dim}"
        )
    arch = f"[{width}]x{depth}"
    rows: list[DemoRow] = []
    notes: list[str] = []
    if train:
        try:
            optional_import("torch", "torch")
        except ImportError as error:
            notes.append(f"note: training skipped (use --no-train to silence this): {error}")
            train = False
        else:
            before, after, loss = train_mlp(width, depth, steps, seed)
            rows += measure(before, f"2->{arch}->1 torch init", seed, verify)
            rows += measure(after, f"2->{arch}->1 trained", seed, verify)
            notes.append(
                f"trained: {steps} full-batch Adam steps on cos(3π‖x‖), 2048 points of "
                f"[-1, 1]^2, final mean squared error {loss:.4f}"
            )
    if not train:
        network = Network.random([2, *[width] * depth, 1], seed=seed)
        rows += measure(network, f"2->{arch}->1 random", seed, verify)
    high = Network.random([high_dim, *[width] * depth, 1], seed=seed)
    rows += measure(high, f"{high_dim}->{arch}->1 random", seed, verify)

    print(f"lrcore demo (seed {seed}): exact linear regions along paths", file=out)
    print(
        f"segment: length {2 * SEGMENT_HALF_LENGTH:.3f} through the origin; circle: radius "
        f"{CIRCLE_RADIUS:g}, closed polyline with {CIRCLE_VERTICES} vertices",
        file=out,
    )
    print(file=out)
    print(format_table(rows), file=out)
    print(file=out)
    if verify:
        disagree = [row for row in rows if row.walk_breakpoints != row.breakpoints]
        if disagree:
            notes += [
                f"MISMATCH: {row.network} along the {row.path}: lrcore {row.breakpoints} "
                f"breakpoints, numpy walk {row.walk_breakpoints}"
                for row in disagree
            ]
        else:
            notes.append("verified: every count equals the numpy walk's (lrcore.reference)")
    for note in notes:
        print(note, file=out)
    if notes:
        print(file=out)
    print(EXPLANATION.format(window=PEAK_WINDOW_FRACTION), file=out)
    if train:
        print(TRAINING_EXPLANATION, file=out)
    return rows
