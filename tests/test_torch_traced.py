"""The traced torch front end: CNN-style chains converted exactly, regions through them."""

from __future__ import annotations

import numpy as np
import pytest

import lrcore
from lrcore._layers import CompositeLayer, Conv
from lrcore.reference import walk_1d

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
nn = torch.nn


def randomise_batchnorm(model):
    # Non-trivial running statistics, so folding them is really tested.
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    return model.eval()


def check_forward(model, input_shape, n=16, seed=0):
    torch.manual_seed(seed)
    net = lrcore.Network.from_torch(model, input_shape=input_shape)
    x = torch.randn((n, *input_shape), dtype=torch.float64)
    expected = model.double()(x).detach().numpy().reshape(n, -1)
    got = net.forward(x.reshape(n, -1).numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    return net


def small_cnn(channels=1):
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 1 * 1, 5),
        nn.ReLU(),
        nn.Linear(5, 2),
    )


def test_small_cnn_on_8x8_matches_torch():
    torch.manual_seed(1)
    net = check_forward(randomise_batchnorm(small_cnn()), (1, 8, 8))
    assert net.num_hidden_layers == 3
    # Convolutions are applied as convolutions in the core, never as matrices.
    first = net.weights[0]
    assert isinstance(first, CompositeLayer)
    assert [type(spec) for _, _, spec in first.parts] == [Conv]


def test_cnn_on_28x28_matches_torch():
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((3, 3)),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(72, 10),
    )
    check_forward(randomise_batchnorm(model), (1, 28, 28))


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [
        (1, 0, 1, 1),
        (2, 1, 1, 1),
        (1, 2, 2, 1),
        (3, 1, 1, 2),
        (1, "same", 1, 2),
        (1, "valid", 3, 1),
    ],
)
def test_conv2d_options(stride, padding, dilation, groups):
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=stride, padding=padding, dilation=dilation, groups=groups),
        nn.ReLU(),
        nn.Flatten(),
        nn.Identity(),
    )
    check_forward(model.eval(), (2, 9, 10))


def test_conv1d_and_batchnorm1d_mlp():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv1d(3, 5, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 6, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, 1),
    )
    check_forward(randomise_batchnorm(model), (3, 12))


def test_avgpool_options():
    torch.manual_seed(5)
    for pool in (
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.AvgPool2d(2, divisor_override=3),
        nn.AdaptiveAvgPool2d(4),
    ):
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), pool, nn.Flatten())
        check_forward(model.eval(), (1, 11, 9))


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        x = nn.functional.leaky_relu(self.fc(x), 0.2)
        return torch.flatten(x, 1)


def test_functional_forms_and_view():
    torch.manual_seed(6)
    net = check_forward(FunctionalNet().eval(), (1, 8, 8))
    assert net.activations == ["relu", "leaky_relu"]
    assert net.negative_slopes[1] == pytest.approx(0.2)


class Functional(nn.Module):
    """A model whose forward is one function of its input (for refusal cases)."""

    def __init__(self, forward):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.function = forward

    def forward(self, x):
        return self.function(self, x)


def data_dependent(self, x):
    return self.fc(x) if x.sum() > 0 else x


@pytest.mark.parametrize(
    ("model", "shape", "match"),
    [
        (nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1)), (4,), "Tanh.*not piecewise"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), (1, 6, 6), "MaxPool2d.*argmax"),
        (
            Functional(lambda self, x: nn.functional.max_pool2d(x, 2)),
            (1, 4, 4),
            "max_pool2d.*argmax",
        ),
        (Functional(lambda self, x: nn.functional.gelu(self.fc(x))), (4,), "gelu.*not piecewise"),
        (Functional(lambda self, x: torch.sigmoid(x)), (4,), "sigmoid.*not piecewise"),
        (Functional(lambda self, x: self.fc(x) * x), (4,), "constant"),
        (Functional(lambda self, x: torch.cat([x, x], dim=0)), (4,), "non-batch"),
    ],
)
def test_refused_modules_name_the_node(model, shape, match):
    with pytest.raises(ValueError, match=match) as info:
        lrcore.Network.from_torch(model.eval(), input_shape=shape)
    assert "position" in str(info.value)


def test_data_dependent_control_flow_is_refused():
    with pytest.raises(ValueError, match="could not trace"):
        lrcore.Network.from_torch(Functional(data_dependent).eval(), input_shape=(4,))


def test_batchnorm_in_training_mode_is_refused():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    model.train()
    with pytest.raises(ValueError, match=r"training mode.*eval"):
        lrcore.Network.from_torch(model, input_shape=(3,))


def test_exact_1d_through_a_cnn_agrees_with_the_walk():
    torch.manual_seed(7)
    model = randomise_batchnorm(small_cnn())
    net = lrcore.Network.from_torch(model, input_shape=(1, 8, 8))
    dense = [w.toarray() if hasattr(w, "toarray") else w for w in net.weights]
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.standard_normal((2, 64)) * 2
        path = np.stack([a, b])
        r = lrcore.count_1d(net, path)
        walk = walk_1d(
            dense,
            net.biases,
            path,
            activations=net.activations,
            negative_slopes=net.negative_slopes,
        )
        assert r.num_breakpoints == walk.num_breakpoints
        np.testing.assert_allclose(r.breakpoints, walk.breakpoints, rtol=0, atol=1e-9 * r.length)


def test_sparse_weights_from_scipy_give_the_dense_result():
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(8)
    w0 = sparse.random(30, 12, density=0.3, random_state=1, format="csr")
    dense_net = lrcore.Network(
        [w0.toarray(), rng.standard_normal((2, 30))], [rng.standard_normal(30), np.zeros(2)]
    )
    sparse_net = lrcore.Network([w0, dense_net.weights[1]], dense_net.biases)
    x = rng.standard_normal((7, 12))
    np.testing.assert_allclose(sparse_net.forward(x), dense_net.forward(x), rtol=1e-13)
    path = rng.standard_normal((5, 12))
    assert np.array_equal(
        lrcore.count_1d(sparse_net, path).breakpoints.round(12),
        lrcore.count_1d(dense_net, path).breakpoints.round(12),
    )
