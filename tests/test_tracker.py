"""RegionTracker: exact counts recorded during training, without touching the model."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import lrcore

torch = pytest.importorskip("torch")
pytest.importorskip("pandas")
from lrcore.torch import RegionTracker

nn = torch.nn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(2, 24),
        nn.BatchNorm1d(24),
        nn.ReLU(),
        nn.Linear(24, 24),
        nn.ReLU(),
        nn.Linear(24, 1),
    )


def circle(n=200, r=0.8):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[r * np.cos(t), r * np.sin(t)]


def test_tracker_counts_equal_direct_counts_at_each_checkpoint():
    model = make_model()
    segment = np.array([[-1.0, -1.0], [1.0, 1.0]])
    plane = lrcore.Plane(np.zeros(2), np.eye(2))
    tracker = RegionTracker(
        model, paths=[segment, circle()], closed=[False, True], slices=[plane], every=5, window=0.5
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(256, 2) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:])
    snapshots = {}
    for step in range(12):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        if step % 5 == 0:
            snapshots[step] = copy.deepcopy(model).eval()
        recorded = tracker.step(step)
        assert recorded == (step % 5 == 0)
        opt.step()
    paths = tracker.to_dataframe("paths")
    slices = tracker.to_dataframe("slices")
    assert sorted(paths["step"].unique()) == [0, 5, 10]
    for step, snap in snapshots.items():
        net = lrcore.Network.from_torch(snap)
        direct = lrcore.count_1d(net, [segment, circle()], closed=[False, True])
        got = paths[paths["step"] == step].sort_values("path")
        assert got["breakpoints"].tolist() == direct.num_breakpoints.tolist()
        regions = lrcore.slice_2d(net, plane).num_regions
        assert slices[slices["step"] == step]["regions"].item() == regions
    windows = tracker.to_dataframe("windows")
    assert set(windows.columns) == {"step", "path", "window_centre", "breakpoints", "density"}
    # The windows tile [0, n * 0.5] of each path: they hold exactly the breakpoints there.
    for (step, path), part in windows.groupby(["step", "path"]):
        net = lrcore.Network.from_torch(snapshots[step])
        r = lrcore.count_1d(net, [segment, circle()][path], closed=bool(path))
        inside = np.count_nonzero(r.breakpoints <= 0.5 * len(part))
        assert part["breakpoints"].sum() == pytest.approx(inside)
    assert tracker.overhead_seconds > 0


def test_step_leaves_model_mode_parameters_and_gradients_alone():
    model = make_model()
    model.train()
    x = torch.rand(32, 2)
    model(x).sum().backward()
    params = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.detach().clone() for p in model.parameters()]
    stats = model[1].running_mean.clone()
    tracker = RegionTracker(model, paths=[np.array([[-1.0, 0.0], [1.0, 0.0]])])
    tracker.step(0)
    assert model.training
    assert model[1].training
    for before, p in zip(params, model.parameters()):
        assert torch.equal(before, p)
    for before, p in zip(grads, model.parameters()):
        assert torch.equal(before, p.grad)
    assert torch.equal(stats, model[1].running_mean)


def test_tracker_on_a_cnn_with_input_shape():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    rng = np.random.default_rng(0)
    path = rng.standard_normal((3, 36))
    tracker = RegionTracker(model, paths=[path], input_shape=(1, 6, 6))
    tracker.step(0)
    net = lrcore.Network.from_torch(model, input_shape=(1, 6, 6))
    assert (
        tracker.to_dataframe("paths")["breakpoints"].item()
        == lrcore.count_1d(net, path).num_breakpoints
    )


def test_tracker_plot_and_bad_arguments():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    model = make_model()
    tracker = RegionTracker(model, paths=[circle()], closed=True)
    for step in range(3):
        tracker.step(step)
    ax = tracker.plot()
    assert len(ax.lines) == 3
    with pytest.raises(ValueError, match="every"):
        RegionTracker(model, paths=[circle()], every=0)
    with pytest.raises(ValueError, match="paths, slices"):
        RegionTracker(model)
    with pytest.raises(TypeError, match=r"slices\[0\]"):
        RegionTracker(model, slices=[np.zeros(2)])
    with pytest.raises(ValueError, match="kind"):
        tracker.to_dataframe("nope")


class ResidualBlockNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(2, 8)
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.relu(h + self.fc2(torch.relu(self.fc1(h))))
        return self.head(h)


def test_tracker_on_a_residual_net_counts_as_its_conversion():
    torch.manual_seed(2)
    model = ResidualBlockNet()
    tracker = RegionTracker(model, paths=[circle()], closed=True, input_shape=(2,), every=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(64, 2) * 2 - 1
    for step in range(3):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        if step == 2:
            net = lrcore.from_torch(model, input_shape=(2,))
            assert net.linear_units == (0, 8, 0)
            expected = lrcore.count_1d(net, circle(), closed=True).num_breakpoints
        tracker.step(step)
        opt.step()
    paths = tracker.to_dataframe("paths")
    assert paths["step"].tolist() == [0, 2]
    assert paths["breakpoints"].iloc[-1] == expected


class ConvBatchNormNet(nn.Module):
    """Convolution, batch-norm and a residual addition: the traced converter's ground."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        h = torch.relu(h + self.conv2(h))
        return self.head(h.flatten(1))


def test_tracker_traces_once_and_reads_the_current_weights(monkeypatch):
    """The tracker's network (graph traced once) is exactly a fresh conversion.

    After training steps (weights and batch-norm statistics change) and a replaced
    submodule.
    """
    import lrcore._torch_fx as torch_fx

    traces = []
    trace_graph = torch_fx.trace_graph
    monkeypatch.setattr(torch_fx, "trace_graph", lambda m: traces.append(m) or trace_graph(m))
    torch.manual_seed(3)
    model = ConvBatchNormNet()
    rng = np.random.default_rng(3)
    paths = [rng.standard_normal((2, 25)), rng.standard_normal((4, 25))]
    tracker = RegionTracker(model, paths=paths, input_shape=(1, 5, 5))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = torch.randn(32, 1, 5, 5)
    points = rng.standard_normal((50, 25))
    for step in range(6):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()  # train mode: running statistics move
        opt.step()
        if step == 3:  # a new submodule under the same name is read too
            model.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        tracker.step(step)
        fresh = lrcore.from_torch(copy.deepcopy(model).eval(), input_shape=(1, 5, 5))
        net = tracker.network()
        np.testing.assert_array_equal(net.forward(points), fresh.forward(points))
        expected = lrcore.count_1d(fresh, paths).num_breakpoints.tolist()
        got = tracker.to_dataframe("paths").query("step == @step").sort_values("path")
        assert got["breakpoints"].tolist() == expected
    # One trace by the tracker (from_torch above traces on its own each time).
    assert sum(m is model for m in traces) == 1
    assert model.training
