"""lrcore.Network: evaluation against plain numpy, construction, conversion, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrcore
from support import nets, random_net, reference, seeds


@given(spec=nets(), num_points=st.integers(1, 50), seed=seeds)
def test_evaluation_equals_plain_numpy(spec, num_points, seed):
    net = spec.to_lrcore()
    x = 3.0 * np.random.default_rng(seed).standard_normal((num_points, spec.input_dim))
    np.testing.assert_allclose(net.forward(x), spec.forward(x), rtol=1e-12, atol=1e-12)
    pre = net.pre_activations(x)
    assert len(pre) == len(spec.hidden_sizes)
    for got, expected in zip(pre, spec.pre_activations(x)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # Patterns come from the network's own pre-activations, so signs match exactly.
    np.testing.assert_array_equal(net.patterns(x), np.concatenate(pre, axis=1) > 0)
    assert net.patterns(x).dtype == bool


def test_single_point_drops_the_batch_axis():
    spec = random_net([3, 5, 4, 2], seed=10)
    net = spec.to_lrcore()
    x = np.array([0.3, -1.2, 2.0])
    assert net.forward(x).shape == (2,)
    np.testing.assert_allclose(net.forward(x), spec.forward(x[None])[0], rtol=1e-13)
    assert [z.shape for z in net.pre_activations(x)] == [(5,), (4,)]
    assert net.patterns(x).shape == (9,)


def test_per_layer_activations():
    spec = random_net([2, 6, 5, 4, 1], seed=11)
    acts, slopes = ["relu", "leaky_relu", "leaky_relu"], [0.0, 0.2, -0.3]
    net = lrcore.Network(spec.weights, spec.biases, activation=acts, negative_slope=slopes)
    assert net.activations == acts
    assert net.negative_slopes == slopes
    x = np.random.default_rng(12).standard_normal((20, 2))
    expected = reference.forward_numpy(spec.weights, spec.biases, x, acts, slopes)
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-12)


def test_structure_attributes():
    spec = random_net([4, 7, 3, 2], seed=13, activation="leaky_relu", negative_slope=0.1)
    net = spec.to_lrcore()
    assert net.input_dim == 4
    assert net.output_dim == 2
    assert net.hidden_sizes == (7, 3)
    assert net.num_hidden_layers == 2
    assert net.num_neurons == 10
    assert net.activations == ["leaky_relu", "leaky_relu"]
    assert net.negative_slopes == [0.1, 0.1]
    for got, expected in zip(net.weights, spec.weights):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(net.biases, spec.biases):
        np.testing.assert_array_equal(got, expected)


def test_weights_are_copies():
    spec = random_net([2, 3, 1], seed=14)
    weights = [w.copy() for w in spec.weights]
    net = lrcore.Network(weights, spec.biases)
    x = np.ones((1, 2))
    before = net.forward(x)
    weights[0][:] = 0.0  # the caller's array
    net.weights[0][:] = 0.0  # the returned copy
    net.biases[0][:] = 5.0
    np.testing.assert_array_equal(net.forward(x), before)


def test_network_without_hidden_layers():
    net = lrcore.Network([np.array([[1.0, -2.0]])], [np.array([0.5])])
    assert net.num_hidden_layers == 0
    assert net.num_neurons == 0
    np.testing.assert_allclose(net.forward([[1.0, 1.0]]), [[-0.5]])
    r = lrcore.count_1d(net, np.array([[0.0, 0.0], [1.0, 3.0]]))
    assert r.num_breakpoints == 0
    assert r.num_pieces == 1


def test_random_follows_torch_default_init():
    net = lrcore.Network.random([16, 32, 8, 3], seed=15)
    again = lrcore.Network.random([16, 32, 8, 3], seed=15)
    other = lrcore.Network.random([16, 32, 8, 3], seed=16)
    for w, w2, w3, b in zip(net.weights, again.weights, other.weights, net.biases):
        bound = 1.0 / np.sqrt(w.shape[1])
        assert np.all(np.abs(w) <= bound)
        assert np.all(np.abs(b) <= bound)
        np.testing.assert_array_equal(w, w2)
        assert not np.array_equal(w, w3)
    assert [w.shape for w in net.weights] == [(32, 16), (8, 32), (3, 8)]


# --- Errors ---------------------------------------------------------------------------


def layer_named(index: int) -> str:
    return rf"(layer {index}\b|weights\[{index}\]|biases\[{index}\])"


def test_sizes_that_do_not_chain():
    spec = random_net([3, 5, 4, 1], seed=17)
    weights = list(spec.weights)
    weights[1] = np.zeros((4, 6))
    with pytest.raises(ValueError, match=layer_named(1)) as info:
        lrcore.Network(weights, spec.biases)
    assert "(4, 6)" in str(info.value)


def test_bias_of_wrong_shape():
    spec = random_net([3, 5, 4, 1], seed=17)
    biases = list(spec.biases)
    biases[2] = np.zeros(2)
    with pytest.raises(ValueError, match=layer_named(2)):
        lrcore.Network(spec.weights, biases)


def test_weight_of_wrong_ndim():
    spec = random_net([3, 5, 4, 1], seed=17)
    weights = list(spec.weights)
    weights[0] = np.zeros(15)
    with pytest.raises(ValueError, match=layer_named(0)):
        lrcore.Network(weights, spec.biases)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["weights", "biases"])
def test_non_finite_parameters(bad, where):
    spec = random_net([3, 5, 4, 1], seed=17)
    weights, biases = list(spec.weights), list(spec.biases)
    target = weights if where == "weights" else biases
    target[1] = target[1].copy()
    target[1].flat[2] = bad
    with pytest.raises(ValueError, match=layer_named(1)):
        lrcore.Network(weights, biases)


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_tiny_nonzero_weights_are_refused(kind):
    # Squares of weights below about 1e-154 underflow, and every bound squares them.
    from scipy import sparse

    spec = random_net([3, 5, 4, 1], seed=17)
    weights = [w.copy() for w in spec.weights]
    weights[1].flat[2] = 1e-200
    weights[1].flat[3] = 0.0  # exact zeros are fine
    if kind == "csr":
        weights[1] = sparse.csr_matrix(weights[1])
    with pytest.raises(ValueError, match=layer_named(1)) as info:
        lrcore.Network(weights, spec.biases)
    assert "1e-200" in str(info.value)
    weights[1] = spec.weights[1].copy()
    weights[1].flat[2] = 2e-150  # at the limit: accepted
    lrcore.Network(weights, spec.biases)


def test_tiny_convolution_weights_are_refused():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1).double()
    with torch.no_grad():
        conv.weight[1, 0, 1, 1] = 1e-180
    model = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(48, 2))
    with pytest.raises(ValueError, match=layer_named(0)):
        lrcore.from_torch(model.double(), (2, 4, 4))


def test_unknown_activation():
    spec = random_net([3, 5, 4, 1], seed=17)
    with pytest.raises(ValueError, match=layer_named(1)) as info:
        lrcore.Network(spec.weights, spec.biases, activation=["relu", "tanh"])
    assert "tanh" in str(info.value)
    with pytest.raises(ValueError, match="tanh"):
        lrcore.Network(spec.weights, spec.biases, activation="tanh")


def test_wrong_number_of_activations_or_layers():
    spec = random_net([3, 5, 4, 1], seed=17)
    with pytest.raises(ValueError, match="activation"):
        lrcore.Network(spec.weights, spec.biases, activation=["relu"])
    with pytest.raises(ValueError):
        lrcore.Network([], [])
    with pytest.raises(ValueError):
        lrcore.Network(spec.weights, spec.biases[:2])


def test_evaluation_rejects_wrong_dimension():
    net = random_net([3, 5, 1], seed=18).to_lrcore()
    with pytest.raises(ValueError, match="x"):
        net.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="x"):
        net.patterns(np.array([[np.nan, 0.0, 0.0]]))


# --- PyTorch ---------------------------------------------------------------------------


def test_from_torch_matches_model():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(5, 16),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16, 12),
        nn.LeakyReLU(0.2),
        nn.Identity(),
        nn.Linear(12, 3),
    ).eval()
    net = lrcore.Network.from_torch(model)
    assert net.hidden_sizes == (16, 12)
    assert net.activations == ["relu", "leaky_relu"]
    assert net.negative_slopes == pytest.approx([0.0, 0.2])
    x = np.random.default_rng(19).standard_normal((64, 5))
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x)).numpy()
        # Hidden layer l's pre-activations are the outputs of the l-th Linear.
        pre = [model[:2](torch.from_numpy(x)).numpy(), model[:5](torch.from_numpy(x)).numpy()]
    np.testing.assert_allclose(net.forward(x), expected, rtol=0, atol=1e-10)
    for got, values in zip(net.pre_activations(x), pre):
        np.testing.assert_allclose(got, values, rtol=0, atol=1e-10)


def test_from_torch_refuses_unsupported_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    # The contract fixes no exception type for an unsupported module, only that it is named.
    with pytest.raises((TypeError, ValueError), match="Tanh"):
        lrcore.Network.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))
    with pytest.raises(TypeError):
        lrcore.Network.from_torch(nn.Linear(2, 3))
