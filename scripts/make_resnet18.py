"""Write graphs/resnet18.json: torchvision's ResNet-18 as a DL Studio graph.

Run from the repository root: ``python scripts/make_resnet18.py``. Positions are left out, so
the editor lays the graph out when it opens it.
"""

from __future__ import annotations

from pathlib import Path

from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import save_graph


class Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []

    def add(self, node_id: str, type_name: str, source: str | None, **params: object) -> str:
        self.nodes.append(Node(id=node_id, type=type_name, params=params))
        if source is not None:
            self.edges.append(Edge(source=source, target=node_id))
        return node_id

    def basic_block(self, name: str, source: str, channels: int, stride: int) -> str:
        strided = {"stride": stride} if stride != 1 else {}
        x = self.add(f"{name}_conv1", "Conv2d", source, out_channels=channels, kernel_size=3,
                     padding=1, bias=False, **strided)
        x = self.add(f"{name}_bn1", "BatchNorm2d", x)
        x = self.add(f"{name}_relu1", "ReLU", x, inplace=True)
        x = self.add(f"{name}_conv2", "Conv2d", x, out_channels=channels, kernel_size=3,
                     padding=1, bias=False)
        x = self.add(f"{name}_bn2", "BatchNorm2d", x)
        shortcut = source
        if stride != 1:
            shortcut = self.add(f"{name}_down_conv", "Conv2d", source, out_channels=channels,
                                kernel_size=1, stride=stride, bias=False)
            shortcut = self.add(f"{name}_down_bn", "BatchNorm2d", shortcut)
        add = self.add(f"{name}_add", "Add", None)
        self.edges += [Edge(source=x, target=f"{add}.in0"), Edge(source=shortcut, target=f"{add}.in1")]
        return self.add(f"{name}_relu2", "ReLU", add, inplace=True)


def build() -> Graph:
    b = Builder()
    x = b.add("image", "Input", None, shape=[3, 224, 224])
    x = b.add("conv1", "Conv2d", x, out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)
    x = b.add("bn1", "BatchNorm2d", x)
    x = b.add("relu", "ReLU", x, inplace=True)
    x = b.add("maxpool", "MaxPool2d", x, kernel_size=3, stride=2, padding=1)
    for stage, channels in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = b.basic_block(f"layer{stage}_{block}", x, channels, stride)
    x = b.add("avgpool", "AdaptiveAvgPool2d", x, output_size=[1, 1])
    x = b.add("flatten", "Flatten", x)
    x = b.add("fc", "Linear", x, out_features=1000)
    b.add("logits", "Output", x)
    return Graph(name="resnet18", nodes=b.nodes, edges=b.edges,
                 description="ResNet-18 (He et al., 2015) as in torchvision: 11,689,512 parameters.")


if __name__ == "__main__":
    save_graph(build(), Path("graphs/resnet18.json"))
