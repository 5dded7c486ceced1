"""Graph models from torch lowered to chains with linear units, checked against torch.

Residual additions, concatenation and functional forms are lowered to chains with linear
units and checked against the torch forward pass and a torch-only walk.

The oracle (``torch_walk``) runs the model itself, records every ReLU / LeakyReLU input and
its derivative along the segment, and walks from crossing to crossing (Gamba et al. 2022).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import lrcore
from lrcore._layers import CompositeLayer

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
from slice_oracle import check_partition, points_in_domain, segment_crossings
from test_torch_traced import randomise_batchnorm
from torch_walk import float64_copy, pre_activations, walk_segment

nn = torch.nn
F = nn.functional


# --------------------------------------------------------------------------- models


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: in-place ReLU, ``+=``, optional 1×1 projection."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


def small_resnet():
    torch.manual_seed(10)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        BasicBlock(4, 4),
        BasicBlock(4, 6, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    return randomise_batchnorm(model)


class ResidualMLP(nn.Module):
    def __init__(self, d=6, width=8, blocks=2, out=2):
        super().__init__()
        self.stem = nn.Linear(d, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
            for _ in range(blocks)
        )
        self.head = nn.Linear(width, out)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        for block in self.blocks:
            h = torch.relu(h + block(h))
        return self.head(h)


class ConcatNet(nn.Module):
    """Two branches of different depth (and activation) concatenated."""

    def __init__(self, d=5):
        super().__init__()
        self.deep = nn.Sequential(
            nn.Linear(d, 6), nn.ReLU(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU()
        )
        self.shallow = nn.Sequential(nn.Linear(d, 4), nn.LeakyReLU(0.2))
        self.head = nn.Linear(9, 2)

    def forward(self, x):
        return self.head(torch.cat([self.deep(x), self.shallow(x)], dim=1))


class ConcatCNN(nn.Module):
    """Conv branches concatenated along channels and along the width."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 3, 3, padding=1)
        self.c = nn.Conv2d(5, 2, 3, stride=2)
        self.fc = nn.Linear(2 * 2 * 4, 2)

    def forward(self, x):
        y = torch.cat([F.relu(self.a(x)), self.b(x)], dim=1)
        z = self.c(torch.relu(y))
        z = torch.concat([z, 0.5 * z], dim=-1)
        return self.fc(F.leaky_relu(z, 0.1).flatten(1))


class FunctionalResidual(nn.Module):
    """``x + f(x)`` with functional ReLUs, a scalar multiple and a subtraction."""

    def __init__(self, d=4):
        super().__init__()
        self.fc1 = nn.Linear(d, 7)
        self.fc2 = nn.Linear(7, d)
        self.head = nn.Linear(d, 1)

    def forward(self, x):
        y = x + self.fc2(F.relu(self.fc1(x)))
        y = F.relu(2.0 * y - x / 4)
        return self.head(y)


class InPlaceAlias(nn.Module):
    """An in-place ReLU overwrites a tensor that is used again afterwards."""

    def __init__(self, d=3):
        super().__init__()
        self.fc = nn.Linear(d, 5)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        y = self.fc(x)
        z = F.relu(y, inplace=True)
        return self.head(z + y)


class OddGraph(nn.Module):
    """An activation of the input itself, an alias of a live tensor, views, a ReLU at the end."""

    def __init__(self, d=4):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.drop = nn.Dropout(0.3)
        self.alias = nn.Identity()

    def forward(self, x):
        a = F.relu(x)
        y = self.alias(x)  # the same tensor as x: carried once
        b = F.leaky_relu(self.fc(a) - y, 0.3)
        c = self.drop(torch.relu(b)) + x.view(-1, 2, 2).reshape(x.size(0), 4)
        return torch.relu(c)


def mlp_with_batchnorm():
    torch.manual_seed(11)
    model = nn.Sequential(
        nn.Linear(5, 12),
        nn.BatchNorm1d(12),
        nn.ReLU(),
        nn.Linear(12, 8),
        nn.ReLU(),
        nn.Linear(8, 2),
    )
    return randomise_batchnorm(model)


def cnn(size):
    torch.manual_seed(12)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * (((size - 3) // 2 + 1) // 2) ** 2, 8),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    return randomise_batchnorm(model)


def build(name):
    torch.manual_seed(13)
    models = {
        "mlp_bn": (mlp_with_batchnorm, (5,)),
        "cnn8": (lambda: cnn(8), (1, 8, 8)),
        "cnn28": (lambda: cnn(28), (1, 28, 28)),
        "resnet": (small_resnet, (1, 8, 8)),
        "residual_mlp": (lambda: ResidualMLP().eval(), (6,)),
        "concat": (lambda: randomise_batchnorm(ConcatNet()), (5,)),
        "concat_cnn": (lambda: ConcatCNN().eval(), (1, 6, 6)),
        "functional_residual": (lambda: FunctionalResidual().eval(), (4,)),
        "inplace_alias": (lambda: InPlaceAlias().eval(), (3,)),
        "odd_graph": (lambda: OddGraph().eval(), (4,)),
    }
    factory, shape = models[name]
    return factory(), shape


ALL = [
    "mlp_bn",
    "cnn8",
    "cnn28",
    "resnet",
    "residual_mlp",
    "concat",
    "concat_cnn",
    "functional_residual",
    "inplace_alias",
    "odd_graph",
]
# The graph models the 1D walk checks (the plain chains are covered by test_torch_traced).
WALKED = ["cnn8", "cnn28", "resnet", "residual_mlp", "concat", "concat_cnn", "functional_residual"]


def converted(name):
    model, shape = build(name)
    before = copy.deepcopy(model.state_dict())
    net = lrcore.from_torch(model, input_shape=shape)
    # The user's model is left alone: same parameters, same dtype, same mode.
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(model.parameters()).dtype == torch.float32
    assert not model.training
    return model, shape, net


def flat_flips(r, net):
    """Per breakpoint, the sorted flat neuron indices flipping there."""
    offsets = net.neuron_offsets()
    flat = offsets[r.flip_neurons[:, 0]] + r.flip_neurons[:, 1]
    return [
        sorted(flat[r.flip_offsets[i] : r.flip_offsets[i + 1]].tolist())
        for i in range(r.num_breakpoints)
    ]


def densified(net):
    dense = [w.toarray() if hasattr(w, "toarray") else w for w in net.weights]
    return lrcore.Network(
        dense, net.biases, net.activations, net.negative_slopes, linear_units=net.linear_units
    )


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("name", ALL)
def test_forward_and_patterns_match_torch(name):
    model, shape, net = converted(name)
    reference = float64_copy(model)
    x = torch.randn((32, *shape), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x).numpy().reshape(32, -1)
    flat = x.reshape(32, -1).numpy()
    np.testing.assert_allclose(net.forward(flat), expected, rtol=1e-10, atol=1e-10)
    # Neurons in the order the activations run: the oracle's numbering.
    z = pre_activations(reference, shape, flat)
    assert z.shape[1] == net.num_neurons
    np.testing.assert_allclose(
        np.concatenate(net.pre_activations(flat), axis=1), z, rtol=1e-9, atol=1e-9
    )


def test_layer_structure_of_residual_and_concat_nets():
    _, _, net = converted("residual_mlp")
    # stem; per block its hidden layer (carrying h) and the block output.
    assert net.hidden_sizes == (8, 8, 8, 8, 8)
    assert net.linear_units == (0, 8, 0, 8, 0)
    _, _, net = converted("concat")
    # deep branch layer 1 (carrying x), deep layer 2 (carrying x), shallow (carrying deep).
    assert net.hidden_sizes == (6, 5, 4)
    assert net.linear_units == (5, 5, 5)
    assert net.activations == ["relu", "relu", "leaky_relu"]
    _, _, net = converted("resnet")
    assert net.hidden_sizes == (256, 256, 256, 96, 96)
    # The block inputs ride along the first layer of each block.
    assert net.linear_units == (0, 256, 0, 256, 0)
    # Convolutions stay convolutions (and carried values diagonal parts).
    assert all(isinstance(w, CompositeLayer) for w in net.weights[:5])
    _, _, net = converted("odd_graph")
    assert net.hidden_sizes == (4, 4, 4, 4)
    assert net.linear_units == (4, 4, 4, 0)
    assert net.activations == ["relu", "leaky_relu", "relu", "relu"]
    _, _, net = converted("inplace_alias")
    assert net.linear_units == (0,)  # the overwritten tensor is the activation's output


# --------------------------------------------------------------------------- 1D


def segments(d, count, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2, d)) for _ in range(count)]


@pytest.mark.parametrize("name", WALKED)
def test_count_1d_agrees_with_the_torch_walk(name):
    model, shape, net = converted(name)
    reference = float64_copy(model)
    total = 0
    # The walk takes one forward pass per breakpoint: fewer segments for the large nets.
    count = 1 if name in ("cnn28", "resnet") else 3
    for path in segments(net.input_dim, count, seed=len(name)):
        r = lrcore.count_1d(net, path)
        walk = walk_segment(reference, shape, path[0], path[1])
        assert r.num_breakpoints == walk.num_breakpoints
        np.testing.assert_allclose(r.breakpoints / r.length, walk.positions, rtol=0, atol=1e-9)
        assert flat_flips(r, net) == [sorted(n.tolist()) for n in walk.neurons]
        total += r.num_breakpoints
    assert total > 3  # the check has something to check


@pytest.mark.parametrize("name", ["cnn8", "resnet", "concat_cnn"])
def test_sparse_and_dense_weights_give_the_same_regions(name):
    _, _, net = converted(name)
    dense = densified(net)
    paths = segments(net.input_dim, 3, seed=5)
    ours, theirs = lrcore.count_1d(net, paths), lrcore.count_1d(dense, paths)
    np.testing.assert_array_equal(ours.num_breakpoints, theirs.num_breakpoints)
    np.testing.assert_allclose(ours.breakpoints, theirs.breakpoints, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.flip_neurons, theirs.flip_neurons)


# --------------------------------------------------------------------------- 2D


@pytest.mark.parametrize("name", ["residual_mlp", "functional_residual", "concat"])
def test_slice_of_a_residual_net_agrees_with_the_torch_walk(name):
    model, shape, net = converted(name)
    reference = float64_copy(model)
    rng = np.random.default_rng(3)
    origin = rng.standard_normal(net.input_dim)
    basis = rng.standard_normal((2, net.input_dim))
    s = lrcore.slice_2d(net, origin, basis, bounds=(-1.5, 1.5, -1.5, 1.5))
    check_partition(s, net)
    assert s.num_regions > 10
    # Interior points of the faces have the patterns torch's own activations give.
    signs = pre_activations(reference, shape, s.to_input(s.centroids)) > 0
    np.testing.assert_array_equal(s.pattern_bools(), signs)
    # Along random lines in the slice, the face boundaries crossed are the walk's breakpoints.
    for _ in range(4):
        p, q = points_in_domain(s.domain, 2, rng)
        crossings, _ = segment_crossings(s, p, q)
        ends = s.to_input(np.stack([p, q]))
        walk = walk_segment(reference, shape, ends[0], ends[1])
        assert len(crossings) == walk.num_breakpoints
        np.testing.assert_allclose(crossings, walk.positions, atol=1e-8)


# --------------------------------------------------------------------------- refusals


class BranchWith(nn.Module):
    """A residual branch that holds the given module."""

    def __init__(self, inner):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.inner = inner

    def forward(self, x):
        return torch.relu(x + self.inner(self.fc(x)))


@pytest.mark.parametrize(
    ("inner", "train", "match"),
    [
        (nn.GELU(), False, r"'inner' \(GELU\) at position 2 .*not piecewise linear"),
        (nn.MaxPool1d(1), False, r"'inner' \(MaxPool1d\) at position 2 .*argmax"),
        (nn.Dropout(0.5), True, r"'inner' \(Dropout\) at position 2 .*training mode"),
        (nn.BatchNorm1d(4), True, r"'inner' \(BatchNorm1d\) at position 2 .*training mode"),
    ],
)
def test_refusals_inside_a_residual_branch_name_the_node(inner, train, match):
    model = BranchWith(inner).train(train)
    with pytest.raises(ValueError, match=match):
        lrcore.from_torch(model, input_shape=(4,))
