"""torchvision's MobileNetV2, written here as torchvision writes it, loads into
graphs/mobilenet_v2.json through the ``torchvision-mobilenet`` key map."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlstudio import compile_graph, load_graph
from dlstudio.train.keymaps import TORCHVISION_MOBILENET
from dlstudio.train.pretrained import load_pretrained
from tests.conftest import GRAPHS
from tests.train.helpers import block_examples
from tests.train.test_keymaps import saved, trained_looking


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class Conv2dNormActivation(nn.Sequential):
    def __init__(self, inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [] if expand_ratio == 1 else [Conv2dNormActivation(inp, hidden, 1)]
        layers += [Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0) -> None:
        super().__init__()
        channels = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [Conv2dNormActivation(3, channels, stride=2)]
        for t, c, n, s in self.SETTING:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        features.append(Conv2dNormActivation(channels, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), (1, 1)), 1))


def test_full_size_torchvision_keys_and_shapes_are_the_graphs():
    reference = MobileNetV2().to("meta")
    assert sum(p.numel() for p in reference.parameters()) == 3_504_872
    graph_state = compile_graph(load_graph(GRAPHS / "mobilenet_v2.json")).state_dict()
    renamed = TORCHVISION_MOBILENET.apply(reference.state_dict())
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in graph_state.items()}


@pytest.mark.parametrize("mapping", ["torchvision-mobilenet", None])
def test_a_narrow_torchvision_mobilenet_v2_loads_and_agrees(mapping, tmp_path):
    torch.manual_seed(0)
    reference = trained_looking(MobileNetV2(num_classes=10, width_mult=0.25))
    path = saved(reference.state_dict(), tmp_path / "mobilenet.safetensors")
    doc = block_examples().mobilenet_v2_doc(width=0.25, size=32, classes=10)
    module = compile_graph(load_graph(doc)).eval()
    report = load_pretrained(module, path, mapping=mapping)
    assert report.key_map == "torchvision-mobilenet" and not report.missing and not report.unused
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(module(x), reference(x), atol=1e-5)
