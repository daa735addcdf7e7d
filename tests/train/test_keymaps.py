"""Key maps: torchvision's ResNet-18 and VGG, and Hugging Face's GPT-2 checkpoints load into graphs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dlstudio import compile_graph, load_graph
from dlstudio.cli import main
from dlstudio.train.errors import ConfigError
from dlstudio.train.pretrained import load_pretrained

RESNET18 = Path(__file__).resolve().parents[2] / "graphs" / "resnet18.json"


# --- torchvision's layout, written as torchvision writes it ----------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (inplanes, planes, stride) in enumerate(widths, start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def trained_looking(module: nn.Module) -> nn.Module:
    """Random running statistics, so that a swapped batch norm shows in the outputs."""
    torch.manual_seed(1)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
            layer.weight.data.uniform_(0.5, 1.5)
            layer.bias.data.uniform_(-0.2, 0.2)
            layer.num_batches_tracked.fill_(7)
    return module.eval()


def saved(state: dict[str, torch.Tensor], path: Path) -> str:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def torchvision_resnet(tmp_path_factory) -> tuple[nn.Module, str]:
    torch.manual_seed(0)
    model = trained_looking(ResNet18())
    return model, saved(model.state_dict(), tmp_path_factory.mktemp("tv") / "resnet18.safetensors")


def resnet_doc(size: int = 224) -> dict:
    doc = json.loads(RESNET18.read_text())
    doc["nodes"][0]["params"]["shape"] = [3, size, size]
    return doc


@pytest.mark.parametrize("mapping", ["torchvision-resnet", None])
def test_torchvision_resnet18_loads_strictly_and_gives_the_same_outputs(torchvision_resnet, mapping):
    original, path = torchvision_resnet
    graph_module = compile_graph(load_graph(resnet_doc()))
    report = load_pretrained(graph_module, path, mapping=mapping)
    assert len(report.loaded) == 122 and report.missing == () and report.unused == ()
    assert report.key_map == "torchvision-resnet"  # named, or detected from the keys
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(graph_module.eval()(x), original(x), atol=1e-5)


def test_a_missing_or_unknown_key_is_one_line_naming_it(torchvision_resnet, tmp_path):
    original, _ = torchvision_resnet
    state = dict(original.state_dict())
    del state["layer3.1.bn2.running_var"]
    state["extra.weight"] = torch.zeros(1)
    path = saved(state, tmp_path / "broken.safetensors")
    with pytest.raises(ConfigError) as caught:
        load_pretrained(compile_graph(load_graph(resnet_doc())), path, mapping="torchvision-resnet")
    message = str(caught.value)
    assert "\n" not in message
    assert "1 graph weight missing (layer3.rest.0.bn2.running_var)" in message
    assert "1 key match no node (extra.weight)" in message


def test_the_command_line_loads_torchvision_weights_with_a_key_map(torchvision_resnet, tmp_path):
    _, path = torchvision_resnet
    doc = resnet_doc(32)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(8, 3, 32, 32)).astype(np.float32),
             y=rng.integers(0, 1000, 8))
    doc["training"] = {"dataset": {"name": "npz", "params": {"path": "data.npz"}, "inputs": {"image": "x"}},
                       "epochs": 1, "batch_size": 4, "validation_split": 0.25}
    graph = tmp_path / "resnet.json"
    graph.write_text(json.dumps(doc))
    out = tmp_path / "run"
    assert main(["run", str(graph), "--out", str(out), "--init-weights", path,
                 "--key-map", "torchvision-resnet", "--max-steps", "1", "--json"]) == 0
    record = json.loads((out / "graph.json").read_text())
    assert record["init_weights"]["loaded"] == 122 and record["init_weights"]["missing"] == []
    assert record["init_weights"]["key_map"] == "torchvision-resnet"
    assert record["config"]["init_weights_map"] == "torchvision-resnet"


def test_a_rename_file_maps_keys(tmp_path):
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    path = saved(source.state_dict(), tmp_path / "w.safetensors")
    (tmp_path / "map.json").write_text(json.dumps({r"^0\.": "fc1.", r"^2\.": "fc2."}))
    from tests.train.helpers import mlp

    target = compile_graph(load_graph(mlp()))
    report = load_pretrained(target, path, mapping="map.json", base_dir=tmp_path)
    assert report.loaded == ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.allclose(target(x), source(x), atol=1e-6)


def test_a_bad_rename_file_is_a_config_error(tmp_path):
    (tmp_path / "map.json").write_text(json.dumps({"rename": {"(": "x"}}))
    from tests.train.helpers import mlp

    path = saved(compile_graph(load_graph(mlp())).state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match="not a valid key map"):
        load_pretrained(compile_graph(load_graph(mlp())), path, mapping=str(tmp_path / "map.json"))


# --- VGG: a small network in torchvision's VGG layout --------------------------------------------

def test_torchvision_vgg_layout_loads_into_a_graph_named_by_module_path(tmp_path):
    torch.manual_seed(0)
    vgg = nn.Module()
    vgg.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    vgg.classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10))
    path = saved(vgg.state_dict(), tmp_path / "vgg.safetensors")
    chain = [("x", "Input", {"shape": [3, 16, 16]}),
             ("features_0", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
             ("features_1", "ReLU", {}), ("features_2", "MaxPool2d", {"kernel_size": 2}),
             ("features_3", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
             ("features_4", "ReLU", {}), ("features_5", "MaxPool2d", {"kernel_size": 2}),
             ("flatten", "Flatten", {}), ("classifier_0", "Linear", {"out_features": 32}),
             ("classifier_1", "ReLU", {}), ("classifier_2", "Linear", {"out_features": 10}),
             ("out", "Output", {})]
    module = compile_graph(load_graph(_chain_doc(chain)))
    report = load_pretrained(module, path, mapping="torchvision-vgg")
    assert len(report.loaded) == 8 and not report.missing
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = vgg.classifier(torch.flatten(vgg.features(x), 1))
        assert torch.allclose(module(x), expected, atol=1e-5)


def _chain_doc(chain: list[tuple[str, str, dict]]) -> dict:
    return {"format": "dlstudio.graph", "version": 1, "name": "chain",
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in chain],
            "edges": [{"source": a[0], "target": b[0]} for a, b in zip(chain, chain[1:], strict=False)]}


# --- Hugging Face GPT-2: Conv1D stores [in, out] --------------------------------------------------

class Conv1D(nn.Module):
    """Hugging Face's GPT-2 projection: weight [in, out], y = x @ W + b."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.1)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class GPT2Attention(nn.Module):
    def __init__(self, d: int, heads: int, positions: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(3 * d, d)
        self.c_proj = Conv1D(d, d)
        mask = torch.tril(torch.ones(positions, positions, dtype=torch.bool))
        self.register_buffer("bias", mask.view(1, 1, positions, positions))  # as older checkpoints hold it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = (z.view(n, t, self.heads, d // self.heads).transpose(1, 2) for z in self.c_attn(x).split(d, 2))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        scores = scores.masked_fill(~self.bias[:, :, :t, :t], float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        return self.c_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc = Conv1D(4 * d, d)
        self.c_proj = Conv1D(d, 4 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(nn.functional.gelu(self.c_fc(x), approximate="tanh"))  # as GPT-2 does


class GPT2Block(nn.Module):
    def __init__(self, d: int, heads: int, positions: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = GPT2Attention(d, heads, positions)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = GPT2MLP(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2LMHeadModel(nn.Module):
    def __init__(self, vocab: int = 50, positions: int = 16, d: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(vocab, d)
        self.transformer.wpe = nn.Embedding(positions, d)
        self.transformer.h = nn.ModuleList(GPT2Block(d, heads, positions) for _ in range(layers))
        self.transformer.ln_f = nn.LayerNorm(d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.transformer
        x = t.wte(ids) + t.wpe(torch.arange(ids.shape[1]))
        for block in t.h:
            x = block(x)
        return t.ln_f(x) @ t.wte.weight.T  # lm_head is tied to wte


def gpt2_doc(vocab: int = 50, positions: int = 16, d: int = 32, heads: int = 4, layers: int = 2) -> dict:
    """graphs/gpt2_small.json at a small size: the layout the hf-gpt2 map is for."""
    doc = json.loads((RESNET18.parent / "gpt2_small.json").read_text())
    nodes = {node["id"]: node for node in doc["nodes"]}
    nodes["wte"]["params"] = {"num_embeddings": vocab, "embedding_dim": d}
    nodes["wpe"]["params"] = {"max_len": positions, "dropout": 0.0}
    nodes["h"]["params"] = {"repeat": layers, "d_model": d, "heads": heads}
    nodes["lm_head"]["params"]["out_features"] = vocab
    return doc


def test_hugging_face_gpt2_loads_with_transposed_projections_and_tied_head(tmp_path):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel().eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # layer norms away from 1 and 0
    state = {k: v for k, v in hf.state_dict().items()}
    assert "transformer.h.0.attn.bias" in state  # the causal mask buffer, which the map drops
    path = saved(state, tmp_path / "gpt2.safetensors")
    module = compile_graph(load_graph(gpt2_doc())).eval()
    report = load_pretrained(module, path, mapping="hf-gpt2")
    assert not report.missing and not report.unused
    ids = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(module(ids), hf(ids), atol=1e-5)


def test_gpt2_is_detected_without_naming_the_map(tmp_path):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel()
    path = saved({k[len("transformer."):]: v for k, v in hf.state_dict().items()}, tmp_path / "g.safetensors")
    report = load_pretrained(compile_graph(load_graph(gpt2_doc())), path)
    assert report.key_map == "hf-gpt2" and not report.missing


def test_the_built_in_maps_are_the_ones_the_checks_and_the_app_list():
    from dlstudio.core.training import KEY_MAPS
    from dlstudio.train.keymaps import BUILTIN_MAPS

    assert tuple(BUILTIN_MAPS) == KEY_MAPS
