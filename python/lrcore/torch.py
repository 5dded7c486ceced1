"""PyTorch front end: record exact region counts while a model trains (torch imported lazily).

:class:`RegionTracker` copies a model to a :class:`lrcore.Network` every few steps and
counts its regions along paths and on slices. The conversion itself lives in two private
leaves that return plain arrays: ``lrcore._torch_sequential`` (``nn.Sequential`` stacks of
Linear / ReLU / LeakyReLU / Identity / Flatten / Dropout in eval mode; its
:func:`sequential_to_arrays` and :func:`infer_input_shape` are re-exported here) and
``lrcore._torch_fx`` (traced graphs with convolutions, batch-norm, residual additions or
concatenation, used by ``Network.from_torch`` with ``input_shape``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._optional import optional_import
from ._torch_sequential import infer_input_shape, sequential_to_arrays
from .network import Network
from .path1d import count_1d
from .slice2d import Plane, slice_2d

__all__ = ["RegionTracker", "infer_input_shape", "sequential_to_arrays"]


class RegionTracker:
    """Record exact region counts of a PyTorch model along paths and slices in training.

    Call :meth:`step` from any training loop; every ``every`` steps it copies the weights to
    a float64 CPU :class:`lrcore.Network` (with eval-mode semantics for batch-norm and
    dropout; the model itself, its mode, parameters and gradients are left as they were)
    and counts exactly. A model converted through ``torch.fx`` (``input_shape`` given, or
    anything but a plain ``nn.Sequential``) is traced once, at the first recording: its
    weights and submodules are read afresh every time, but its ``forward`` code must not
    change afterwards.

    Parameters
    ----------
    model
        The model (any device).
    paths
        Polylines ``(n, d)`` in the flattened input space (d = prod(input_shape)).
    slices
        :class:`lrcore.Plane` objects; each is partitioned over ``bounds``.
    every
        Record at steps divisible by this.
    input_shape
        One input's shape without the batch dimension, for models other than plain
        ``nn.Sequential`` MLPs (e.g. ``(1, 28, 28)``).
    window
        Width of the density windows along the paths (default: a tenth of each path).
    closed
        Whether the paths are closed (one flag, or one per path).
    bounds
        ``(s0, s1, t0, t1)`` of the slices.
    total_steps
        If given, a progress bar (tqdm, when installed) counts the steps.

    Examples
    --------
    >>> import numpy as np, torch, lrcore
    >>> from lrcore.torch import RegionTracker
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
    ...                             torch.nn.Linear(16, 1))
    >>> tracker = RegionTracker(model, paths=[np.array([[-1.0, 0.0], [1.0, 0.0]])])
    >>> tracker.step(0)
    True
    >>> int(tracker.to_dataframe("paths")["breakpoints"].iloc[0]) >= 0
    True
    """

    def __init__(
        self,
        model: Any,
        paths: Sequence[Any] = (),
        slices: Sequence[Any] = (),
        every: int = 1,
        input_shape: Sequence[int] | None = None,
        window: float | None = None,
        closed: bool | Sequence[bool] = False,
        bounds: Sequence[float] = (-1.0, 1.0, -1.0, 1.0),
        total_steps: int | None = None,
    ) -> None:
        if int(every) < 1:
            msg = f"every: expected a positive integer, got {every!r}"
            raise ValueError(msg)
        self.model = model
        self.paths = [np.asarray(p, dtype=np.float64) for p in paths]
        self.slices = list(slices)
        for i, plane in enumerate(self.slices):
            if not isinstance(plane, Plane):
                msg = f"slices[{i}]: expected an lrcore.Plane, got {type(plane).__name__}"
                raise TypeError(msg)
        if not self.paths and not self.slices:
            raise ValueError("paths, slices: give at least one path or one slice to track")
        self.every = int(every)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.window = window
        self.closed = closed
        self.bounds = tuple(float(b) for b in bounds)
        #: Seconds spent inside step() (conversion and counting): the tracker's overhead.
        self.overhead_seconds = 0.0
        self._path_rows: list[dict[str, Any]] = []
        self._window_rows: list[dict[str, Any]] = []
        self._slice_rows: list[dict[str, Any]] = []
        self._bar = None
        self._traced: tuple[Any, tuple[int, ...]] | None = None  # the fx graph, traced once
        if total_steps is not None:
            try:
                tqdm = optional_import("tqdm", "progress")
                self._bar = tqdm.tqdm(total=int(total_steps), desc="lrcore tracking")
            except ImportError:
                self._bar = None

    def network(self) -> Any:
        """The model's current weights as a float64 :class:`lrcore.Network`."""
        torch = optional_import("torch")
        modes = {m: m.training for m in self.model.modules()}
        try:
            self.model.eval()  # eval semantics for batch-norm and dropout
            with torch.no_grad():
                # The model is traced once (its structure is assumed fixed while it
                # trains); each call reads the weights its modules have now.
                net, self._traced = Network._converted(self.model, self.input_shape, self._traced)
                return net
        finally:
            for module, training in modes.items():
                module.training = training

    def step(self, step: int) -> bool:
        """Record at this training step if it is due; returns whether it recorded."""
        if self._bar is not None:
            self._bar.update(1)
        if int(step) % self.every != 0:
            return False
        start = time.perf_counter()
        net = self.network()
        if self.paths:
            batch = count_1d(net, list(self.paths), self.closed)
            for i, result in enumerate(batch):
                window = self.window if self.window is not None else result.length / 10
                self._path_rows.append(
                    {
                        "step": int(step),
                        "path": i,
                        "length": result.length,
                        "breakpoints": result.num_breakpoints,
                        "pieces": result.num_pieces,
                        "distinct": result.num_distinct,
                        "density": result.global_density,
                    }
                )
                if result.length > 0:
                    centres = result.window_centers(window)
                    for centre, value in zip(centres, result.density(window, at=centres)):
                        self._window_rows.append(
                            {
                                "step": int(step),
                                "path": i,
                                "window_centre": float(centre),
                                "breakpoints": float(value) * window,
                                "density": float(value),
                            }
                        )
        if self.slices:
            results = slice_2d(net, list(self.slices), bounds=self.bounds)
            for i, s in enumerate(results):
                self._slice_rows.append({"step": int(step), "slice": i, "regions": s.num_regions})
        self.overhead_seconds += time.perf_counter() - start
        return True

    def to_dataframe(self, kind: str = "windows") -> Any:
        """A tidy pandas DataFrame of what was recorded.

        ``kind="windows"``: step, path, window_centre, breakpoints, density;
        ``"paths"``: step, path, length, breakpoints, pieces, distinct, density;
        ``"slices"``: step, slice, regions.
        """
        pd = optional_import("pandas")
        rows = {"windows": self._window_rows, "paths": self._path_rows, "slices": self._slice_rows}
        if kind not in rows:
            msg = f"kind: expected 'windows', 'paths' or 'slices', got {kind!r}"
            raise ValueError(msg)
        return pd.DataFrame(rows[kind])

    def plot(self, path: int = 0, ax: Any = None) -> Any:
        """Density along path ``path`` at every recorded step (matplotlib)."""
        plt = optional_import("matplotlib.pyplot", "plot")
        frame = self.to_dataframe("windows")
        if frame.empty:
            raise ValueError("nothing recorded along paths yet")
        frame = frame[frame["path"] == path]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        steps = sorted(frame["step"].unique())
        cmap = plt.get_cmap("viridis")
        for k, step in enumerate(steps):
            part = frame[frame["step"] == step]
            ax.plot(
                part["window_centre"],
                part["density"],
                color=cmap(k / max(1, len(steps) - 1)),
                label=f"step {step}",
            )
        ax.set_xlabel("arc length")
        ax.set_ylabel("breakpoints per unit length")
        ax.set_title(f"region density along path {path} during training")
        if len(steps) <= 10:
            ax.legend(fontsize="small")
        return ax

    def lightning_callback(self) -> Any:
        """A PyTorch Lightning callback that calls :meth:`step` after every batch."""
        lightning = None
        for name in ("lightning.pytorch", "pytorch_lightning"):
            try:
                lightning = optional_import(name, "lightning")
                break
            except ImportError:
                continue
        if lightning is None:
            raise ImportError("lightning_callback needs PyTorch Lightning: pip install lightning")
        tracker = self

        class RegionTrackerCallback(lightning.Callback):  # type: ignore[misc,name-defined]
            def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
                tracker.step(trainer.global_step)

        return RegionTrackerCallback()

    def close(self) -> None:
        """Close the progress bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
