"""Convolutions applied as convolutions (CompositeLayer / the core's ConvAffine).

Oracles: torch's own float64 forward pass, the old representation of the same chain
(every layer one CSR or dense matrix: ``trace_to_layers(structured=False)``, built by
independent numpy code), and the torch-forward walk of ``tests/torch_walk.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrcore
from lrcore import _core
from lrcore._layers import CompositeLayer, Conv
from lrcore._verify import _row_norms

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
from hypothesis import given, settings
from hypothesis import strategies as st

from lrcore import zoo
from lrcore._torch_fx import trace_to_layers

nn = torch.nn
F = torch.nn.functional


def both(model, shape):
    """The model converted with structured layers, and as the old chain of matrices."""
    new = lrcore.from_torch(model, shape)
    layers = trace_to_layers(model, shape, structured=False)
    old = lrcore.Network(
        layers.weights, layers.biases, layers.activations, layers.slopes, layers.linear_units
    )
    return new, old


def torch_forward(model, shape, x):
    with torch.no_grad():
        out = model.double()(torch.as_tensor(x).reshape(-1, *shape))
    return out.reshape(len(x), -1).numpy()


def check_layers(new, old):
    """Same matrices, exact row norms, |W| @ v, against the old chain."""
    rng = np.random.default_rng(0)
    for w_new, w_old in zip(new.weights, old.weights):
        if not isinstance(w_new, CompositeLayer):
            continue
        dense = w_old.toarray() if hasattr(w_old, "toarray") else w_old
        np.testing.assert_allclose(w_new.toarray(), dense, rtol=0, atol=1e-15)
        np.testing.assert_allclose(
            w_new.row_norms(), np.linalg.norm(dense, axis=1), rtol=1e-13, atol=1e-300
        )
        v = rng.uniform(size=w_new.shape[1])
        np.testing.assert_allclose(abs(w_new) @ v, np.abs(dense) @ v, rtol=1e-12)


class Residual(nn.Module):
    """Two residual blocks (identity and strided 1×1 shortcut) on a small image."""

    def __init__(self, width=3):
        super().__init__()
        self.stem = nn.Conv2d(2, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.c1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(width)
        self.c2 = nn.Conv2d(width, width, 3, padding=1)
        self.c3 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.short = nn.Conv2d(width, 2 * width, 1, stride=2)
        self.fc = nn.Linear(2 * width, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.stem(x)))
        h = F.relu(h + self.c2(F.relu(self.b1(self.c1(h)))))
        h = F.relu(self.c3(h) + self.short(h))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def test_residual_net_layers_outputs_and_counts():
    torch.manual_seed(0)
    model = zoo.randomise_batchnorm(Residual())
    shape = (2, 6, 6)
    new, old = both(model, shape)
    assert all(isinstance(w, CompositeLayer) for w in new.weights[:-1])
    check_layers(new, old)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((70, 72))
    np.testing.assert_allclose(new.forward(x), torch_forward(model, shape, x), atol=1e-10)
    from torch_walk import float64_copy, walk_segment

    walk_model = float64_copy(model)
    for _ in range(3):
        a, b = rng.standard_normal((2, 72))
        r_new = lrcore.count_1d(new, np.stack([a, b]))
        r_old = lrcore.count_1d(old, np.stack([a, b]))
        walk = walk_segment(walk_model, shape, a, b)
        assert r_new.num_breakpoints == r_old.num_breakpoints == walk.num_breakpoints
        np.testing.assert_allclose(r_new.breakpoints, r_old.breakpoints, atol=1e-9 * r_new.length)
        np.testing.assert_allclose(r_new.breakpoints / r_new.length, walk.positions, atol=1e-8)
        assert r_new.verify().ok


def test_zoo_resnet18_small_width_matches_torch_and_old_chain():
    model = zoo.resnet18(width=2)
    shape = zoo.INPUT_SHAPES["resnet18"]
    new, old = both(model, shape)
    assert new.hidden_sizes == old.hidden_sizes
    assert new.linear_units == old.linear_units
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 3072))
    np.testing.assert_allclose(new.forward(x), torch_forward(model, shape, x), atol=1e-10)
    a = x[0]
    b = a + 0.01 * rng.standard_normal(3072)
    # Every sign certified (no slow-path budget): both chains give the exact answer.
    r_new = lrcore.count_1d(new, np.stack([a, b]), max_slow_decisions=None)
    r_old = lrcore.count_1d(old, np.stack([a, b]), max_slow_decisions=None)
    assert r_new.uncertified_decisions == r_old.uncertified_decisions == 0
    assert r_new.num_breakpoints == r_old.num_breakpoints > 0
    np.testing.assert_allclose(r_new.breakpoints, r_old.breakpoints, atol=1e-9 * r_new.length)


@st.composite
def conv_nets(draw):
    """A small random Conv1d/Conv2d net with the options the core must get right."""
    nd = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_mid = groups * draw(st.integers(1, 2))
    size = draw(st.integers(5, 9))
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.sampled_from([0, 1, 2, "same"]))
    if padding == "same":
        stride = 1
    conv = nn.Conv1d if nd == 1 else nn.Conv2d
    seed = draw(st.integers(0, 2**16))
    torch.manual_seed(seed)
    first = conv(c_in, c_mid, kernel, stride, padding, dilation, groups, bias=draw(st.booleans()))
    second = conv(c_mid, 2, 2, 1, 1)
    bn = nn.BatchNorm1d(c_mid) if nd == 1 else nn.BatchNorm2d(c_mid)
    model = nn.Sequential(first, bn, nn.ReLU(), second, nn.ReLU(), nn.Flatten())
    shape = (c_in, size) if nd == 1 else (c_in, size, size + 1)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
    except RuntimeError:
        from hypothesis import assume

        assume(False)
    return zoo.randomise_batchnorm(model, seed), shape


@settings(max_examples=40, deadline=None)
@given(conv_nets(), st.integers(0, 2**16))
def test_random_conv_nets_agree_with_torch_and_the_old_chain(net_and_shape, seed):
    model, shape = net_and_shape
    new, old = both(model, shape)
    check_layers(new, old)
    dim = new.input_dim
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(rng.integers(1, 80)), dim))
    np.testing.assert_allclose(new.forward(x), torch_forward(model, shape, x), atol=1e-10)
    path = rng.standard_normal((3, dim))
    r_new, r_old = lrcore.count_1d(new, path), lrcore.count_1d(old, path)
    assert r_new.num_breakpoints == r_old.num_breakpoints
    np.testing.assert_allclose(r_new.breakpoints, r_old.breakpoints, atol=1e-9 * r_new.length)


def test_conv_row_norms_leave_out_padding():
    weight = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    conv = Conv(weight, (1, 3, 3), (1, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1)
    norms = conv.row_norms().reshape(3, 3)
    # The centre sees every tap; the corner (0, 0) only the taps 5, 6, 8, 9.
    assert norms[1, 1] == pytest.approx(np.sqrt((weight**2).sum()))
    assert norms[0, 0] == pytest.approx(np.sqrt(25 + 36 + 64 + 81))
    np.testing.assert_allclose(norms.ravel(), _row_norms(conv.matrix()))


def test_core_refuses_parts_that_overlap():
    ones = np.ones(4)
    layer = ("composite", 4, 4, [(0, 0, ("diag", ones)), (2, 0, ("diag", ones[:2]))])
    with pytest.raises(ValueError, match="disjoint"):
        _core.Network([layer], [np.zeros(4)], [], [], [])
    with pytest.raises(ValueError, match="does not fit"):
        _core.Network([("composite", 4, 4, [(2, 0, ("diag", ones))])], [np.zeros(4)], [], [], [])
    with pytest.raises(ValueError, match="expected"):
        _core.Network([("composite", 4, 4, [(0, 0, ("nope", ones))])], [np.zeros(4)], [], [], [])


class Head(nn.Module):
    """A conv layer, then one functional form written in ``forward``, then Linear."""

    def __init__(self, form, features):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.form = form
        self.fc = nn.Linear(features, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.form(F.relu(self.conv(x))), 1))


@pytest.mark.parametrize(
    ("form", "features"),
    [
        (lambda h: F.adaptive_avg_pool2d(h, (2, 3)), 18),
        (lambda h: F.adaptive_avg_pool2d(h, 1), 3),
        (lambda h: F.avg_pool2d(h, 2), 27),
        (lambda h: F.avg_pool2d(h, 3, stride=2, padding=1, count_include_pad=False), 27),
        (lambda h: h.mean((2, 3)), 3),
        (lambda h: torch.mean(h, dim=[2, 3]), 3),
        (lambda h: h.mean(dim=(-2, -1), keepdim=True), 3),
        (lambda h: h.mean(1), 36),
        (lambda h: F.pad(h, (1, 2, 0, 1)), 3 * 7 * 9),
        (lambda h: F.pad(h, (1, 1), mode="constant", value=0.5), 3 * 6 * 8),
        (lambda h: F.pad(h, (-1, 0, 0, -2)), 3 * 4 * 5),
        (lambda h: torch.flatten(h, 1), 108),
    ],
)
def test_functional_forms_match_torch(form, features):
    torch.manual_seed(9)
    model = Head(form, features).eval()
    shape = (2, 6, 6)
    net = lrcore.from_torch(model, shape)
    x = np.random.default_rng(3).standard_normal((5, 72))
    np.testing.assert_allclose(net.forward(x), torch_forward(model, shape, x), atol=1e-10)


@pytest.mark.parametrize(
    ("form", "match"),
    [
        (lambda h: h.mean(), "batch"),
        (lambda h: h.mean((0, 2)), "batch dimension"),
        (lambda h: F.pad(h, (1, 1), mode="reflect"), "reflect"),
    ],
)
def test_functional_forms_refused(form, match):
    model = Head(form, 3).eval()
    with pytest.raises(ValueError, match=match):
        lrcore.from_torch(model, (2, 6, 6))


def test_slice_through_three_images_of_a_residual_cnn():
    torch.manual_seed(10)
    model = zoo.randomise_batchnorm(Residual())
    shape = (2, 6, 6)
    new, old = both(model, shape)
    rng = np.random.default_rng(4)
    images = rng.standard_normal((3, 72))
    plane = lrcore.Plane.through(*images)
    s_new = lrcore.slice_2d(new, plane)
    s_old = lrcore.slice_2d(old, plane)
    assert s_new.num_regions == s_old.num_regions > 3
    assert s_new.verify().ok
    # Interior points of the faces have the patterns torch's own activations give.
    from torch_walk import float64_copy, pre_activations

    signs = pre_activations(float64_copy(model), shape, s_new.to_input(s_new.centroids)) > 0
    np.testing.assert_array_equal(s_new.pattern_bools(), signs)


@pytest.mark.parametrize("name", ["vgg11", "lenet5"])
def test_zoo_models_with_max_pooling_convert_exactly(name):
    model = getattr(zoo, name)(**({"width": 2} if name == "vgg11" else {}))
    shape = zoo.INPUT_SHAPES[name]
    assert not model.training
    net = lrcore.from_torch(model, shape)
    assert net.pooling is not None  # max pooling lowered to tournaments (docs/maxpool.md)
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, size=(3, int(np.prod(shape))))
    from torch_walk import float64_copy

    with torch.no_grad():
        expected = float64_copy(model)(torch.from_numpy(x).reshape(3, *shape)).numpy()
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-10, atol=1e-10)
    # A short segment: every breakpoint changes a ReLU sign or a window's argmax.
    segment = np.stack([x[0], x[0] + 0.002 * rng.standard_normal(x.shape[1])])
    result = lrcore.count_1d(net, segment)
    assert result.pooling is not None
    assert result.verify().ok


def test_zoo_resnet18_structure():
    model = zoo.resnet18(width=2)
    net = lrcore.from_torch(model, zoo.INPUT_SHAPES["resnet18"])
    # Stem, then two layers per basic block (the first carries the block's input).
    assert net.num_hidden_layers == 1 + 2 * 8
    assert net.hidden_sizes[0] == 2 * 32 * 32
    assert net.hidden_sizes[-1] == 16 * 4 * 4
    assert net.linear_units[1::2] == (2 * 32 * 32,) * 3 + (4 * 16 * 16,) * 2 + (8 * 8 * 8,) * 2 + (
        16 * 4 * 4,
    )
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(float(m.running_var.min()) >= 0.5 for m in bn)


def test_large_convolutions_without_a_gather_table_match_torch():
    """Convolutions with and without ConvAffine's gather table give torch's values.

    Above kGatherEntries (position, tap) pairs the core builds its im2col columns row by
    row instead of gathering them from a table.
    """
    torch.manual_seed(4)
    shape = (2, 400, 330)
    model = nn.Sequential(nn.Conv2d(2, 2, 3, stride=(1, 2), padding=1, dilation=(2, 1)), nn.ReLU())
    model = nn.Sequential(*model, nn.Conv2d(2, 1, 2), nn.ReLU(), nn.Flatten())
    net = lrcore.from_torch(model, shape)
    positions = 400 * 330 // 2
    assert positions * 2 * 9 > 1 << 20  # the first convolution: no table
    x = np.random.default_rng(4).standard_normal((2, net.input_dim))
    np.testing.assert_allclose(net.forward(x), torch_forward(model, shape, x), atol=1e-10)
