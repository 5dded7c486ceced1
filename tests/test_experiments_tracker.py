"""The study's density change equals the one lrcore's RegionTracker records in training."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("pandas")
pytest.importorskip("scipy")

from lrcore import Network, count_1d
from lrcore.experiments.manifolds import Ellipse
from lrcore.experiments.sweep import measure_densities
from lrcore.experiments.targets import Target
from lrcore.experiments.training import build_mlp, checkpoint_steps, train
from lrcore.torch import RegionTracker


def test_tracker_and_direct_counting_agree_on_a_trained_toy_model():
    curve = Ellipse(1.0, 0.5)
    trajectory = curve.trajectories(400)[0]
    rng = np.random.default_rng(0)
    inputs, coordinate = curve.sample(256, rng)
    model = build_mlp(2, 16, 2, seed=0)
    windows = 16
    length = count_1d(Network.from_torch(model), trajectory.points, True).length
    tracker = RegionTracker(
        model, paths=[trajectory.points], closed=True, every=40, window=length / windows
    )
    direct: dict[int, np.ndarray] = {}

    def on_checkpoint(step, trained):
        direct[step] = measure_densities(
            Network.from_torch(trained), [trajectory], windows, num_threads=1
        )[1][0]

    steps = checkpoint_steps(120, 3)
    _, final_loss = train(
        model,
        inputs,
        Target("step")(coordinate),
        120,
        1e-2,
        steps,
        on_checkpoint,
        on_step=tracker.step,
    )
    assert steps == [0, 40, 80, 120]
    assert final_loss < 1.0
    recorded = tracker.to_dataframe("windows")
    for step in steps:
        by_tracker = recorded[recorded["step"] == step]["density"].to_numpy()
        np.testing.assert_allclose(by_tracker, direct[step], rtol=1e-12)
    change_tracker = (
        recorded[recorded["step"] == 120]["density"].to_numpy()
        - recorded[recorded["step"] == 0]["density"].to_numpy()
    )
    np.testing.assert_allclose(change_tracker, direct[120] - direct[0], atol=1e-12)
    # Training changed something, so the comparison is not between two constants.
    assert np.any(direct[120] != direct[0])


def test_models_are_seeded_without_touching_torch_global_state():
    import torch

    state = torch.random.get_rng_state()
    first = build_mlp(3, 8, 2, seed=5)
    second = build_mlp(3, 8, 2, seed=5)
    other = build_mlp(3, 8, 2, seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters()):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
