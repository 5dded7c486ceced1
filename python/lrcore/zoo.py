"""Standard convolutional models for tests and benchmarks, written here (no downloads).

- :func:`resnet18`: the CIFAR-style ResNet-18 (3×3 stem, four stages of two basic blocks,
  widths ``64·w``-``128·w``-``256·w``-``512·w``, BatchNorm, AdaptiveAvgPool2d, Linear) on
  3×32×32 inputs;
- :func:`vgg11`: VGG-11 (configuration "A": eight 3×3 convolutions with BatchNorm, five
  2×2 max pools, one Linear) on 3×32×32;
- :func:`lenet5`: LeNet-5 on 1×28×28 (two 5×5 convolutions, each followed by 2×2 max
  pooling, then three Linear layers).

Weights are torch's default initialisation from ``seed``; every BatchNorm gets
non-trivial running statistics and affine parameters (:func:`randomise_batchnorm`) and
the model is returned in eval mode, so converting it really folds batch-norm. Needs torch.
"""

from __future__ import annotations

from typing import Any

from ._optional import optional_import

__all__ = ["lenet5", "randomise_batchnorm", "resnet18", "vgg11"]

#: Input shape (without the batch dimension) of each model of the zoo.
INPUT_SHAPES = {"resnet18": (3, 32, 32), "vgg11": (3, 32, 32), "lenet5": (1, 28, 28)}


def _torch() -> Any:
    return optional_import("torch")


def randomise_batchnorm(model: Any, seed: int = 0) -> Any:
    """Give every BatchNorm of ``model`` non-trivial running statistics; eval mode.

    Running means ``N(0, 0.1²)``, variances ``U(0.5, 1.5)``, weights ``U(0.5, 1.5)`` and
    biases ``N(0, 0.1²)``: the scale of a trained network's statistics, so activations
    neither vanish nor explode through a deep model.
    """
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                shape = module.running_mean.shape
                module.running_mean.copy_(0.1 * torch.randn(shape, generator=gen))
                module.running_var.copy_(torch.rand(shape, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(shape, generator=gen) + 0.5)
                module.bias.copy_(0.1 * torch.randn(shape, generator=gen))
    return model.eval()


def _basic_block(nn: Any, torch: Any, c_in: int, c_out: int, stride: int) -> Any:
    class BasicBlock(nn.Module):  # type: ignore[misc]
        """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = nn.Sequential()
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: Any) -> Any:
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + self.shortcut(x))

    return BasicBlock()


def resnet18(width: int = 64, num_classes: int = 10, seed: int = 0) -> Any:
    """CIFAR-style ResNet-18 on 3×32×32 (``width`` = channels of the first stage).

    Examples
    --------
    >>> import lrcore.zoo
    >>> model = lrcore.zoo.resnet18(width=4)
    >>> sum(p.numel() for p in model.parameters()) > 0
    True
    """
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)

    class ResNet18(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            blocks = []
            c_in = width
            for stage, factor in enumerate((1, 2, 4, 8)):
                c_out = width * factor
                for index in range(2):
                    stride = 2 if stage > 0 and index == 0 else 1
                    blocks.append(_basic_block(nn, torch, c_in, c_out, stride))
                    c_in = c_out
            self.layers = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.linear = nn.Linear(c_in, num_classes)

        def forward(self, x: Any) -> Any:
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.layers(out)
            return self.linear(torch.flatten(self.pool(out), 1))

    return randomise_batchnorm(ResNet18(), seed)


def vgg11(width: int = 64, num_classes: int = 10, seed: int = 0) -> Any:
    """VGG-11 with BatchNorm and max pooling on 3×32×32 (``width`` scales the channels)."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    config: list[int | str] = [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"]
    layers: list[Any] = []
    c_in = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            c_out = width * int(item)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in, num_classes)]
    return randomise_batchnorm(nn.Sequential(*layers), seed)


def lenet5(num_classes: int = 10, seed: int = 0) -> Any:
    """LeNet-5 with ReLU and max pooling on 1×28×28."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
    return model.eval()
