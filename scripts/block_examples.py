"""Write the block examples of issue 11 into graphs/.

Run from the repository root: python scripts/block_examples.py
"""

import math

from dlstudio.core.io import load_graph, save_graph


def chain(ids):
    return [{"source": a, "target": b} for a, b in zip(ids, ids[1:], strict=False)]


def conv(id_, out, k, stride=1, pad=0, in_=None):
    p = {"out_channels": out, "kernel_size": k, "bias": False}
    if in_ is not None:
        p["in_channels"] = in_
    if stride != 1:
        p["stride"] = stride
    if pad:
        p["padding"] = pad
    return {"id": id_, "type": "Conv2d", "params": p}


def bn(id_):
    return {"id": id_, "type": "BatchNorm2d"}


def relu(id_):
    return {"id": id_, "type": "ReLU", "params": {"inplace": True}}


def save(doc, name):
    graph = load_graph(doc)
    save_graph(graph, f"graphs/{name}.json")


def stem():
    return [{"id": "image", "type": "Input", "params": {"shape": [3, 224, 224]}},
            conv("conv1", 64, 7, 2, 3), bn("bn1"), relu("relu"),
            {"id": "maxpool", "type": "MaxPool2d", "params": {"kernel_size": 3, "stride": 2, "padding": 1}}]


def head(features):
    return [{"id": "avgpool", "type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
            {"id": "flatten", "type": "Flatten"},
            {"id": "fc", "type": "Linear", "params": {"out_features": 1000}},
            {"id": "logits", "type": "Output"}]


def resnet18():
    basic = {
        "description": "Two 3x3 convolutions and an identity shortcut (torchvision's BasicBlock).",
        "params": {"channels": 64},
        "nodes": [{"id": "x", "type": "Input"}, conv("conv1", "$channels", 3, 1, 1), bn("bn1"), relu("relu1"),
                  conv("conv2", "$channels", 3, 1, 1), bn("bn2"), {"id": "add", "type": "Add"}, relu("relu2"),
                  {"id": "y", "type": "Output"}],
        "edges": chain(["x", "conv1", "bn1", "relu1", "conv2", "bn2", "add.in0"]) + [
            {"source": "x", "target": "add.in1"}] + chain(["add", "relu2", "y"]),
    }
    down = {
        "description": "A BasicBlock that changes size: strided 3x3 and a 1x1 projection shortcut.",
        "params": {"in_channels": 64, "channels": 128, "stride": 2},
        "nodes": [{"id": "x", "type": "Input"}, conv("conv1", "$channels", 3, "$stride", 1, "$in_channels"),
                  bn("bn1"), relu("relu1"), conv("conv2", "$channels", 3, 1, 1), bn("bn2"),
                  conv("down_conv", "$channels", 1, "$stride", 0, "$in_channels"), bn("down_bn"),
                  {"id": "add", "type": "Add"}, relu("relu2"), {"id": "y", "type": "Output"}],
        "edges": chain(["x", "conv1", "bn1", "relu1", "conv2", "bn2", "add.in0"])
        + chain(["x", "down_conv", "down_bn", "add.in1"]) + chain(["add", "relu2", "y"]),
    }
    stage = {
        "description": "A ResNet stage: one DownBlock, then BasicBlocks.",
        "params": {"in_channels": 64, "channels": 128, "stride": 2, "blocks": 2},
        "nodes": [{"id": "x", "type": "Input"},
                  {"id": "down", "type": "DownBlock",
                   "params": {"in_channels": "$in_channels", "channels": "$channels", "stride": "$stride"}},
                  {"id": "rest", "type": "BasicBlock", "params": {"channels": "$channels", "repeat": "$blocks - 1"}},
                  {"id": "y", "type": "Output"}],
        "edges": chain(["x", "down", "rest", "y"]),
    }
    nodes = stem() + [
        {"id": "layer1", "type": "BasicBlock", "params": {"channels": 64, "repeat": 2}},
        {"id": "layer2", "type": "Stage", "params": {"in_channels": 64, "channels": 128}},
        {"id": "layer3", "type": "Stage", "params": {"in_channels": 128, "channels": 256}},
        {"id": "layer4", "type": "Stage", "params": {"in_channels": 256, "channels": 512}},
    ] + head(512)
    doc = {"format": "dlstudio.graph", "version": 2, "name": "resnet18",
           "description": "ResNet-18 (He et al., 2015) as in torchvision, built from blocks:\n11,689,512 parameters.",
           "blocks": {"BasicBlock": basic, "DownBlock": down, "Stage": stage},
           "nodes": nodes, "edges": chain([n["id"] for n in nodes])}
    save(doc, "resnet18")


def resnet50():
    def bottleneck(projection):
        nodes = [{"id": "x", "type": "Input"}, conv("conv1", "$width", 1, 1, 0, "$in_channels" if projection else None),
                 bn("bn1"), relu("relu1"),
                 conv("conv2", "$width", 3, "$stride" if projection else 1, 1), bn("bn2"), relu("relu2"),
                 conv("conv3", "$width * 4", 1), bn("bn3"), {"id": "add", "type": "Add"}, relu("relu3"),
                 {"id": "y", "type": "Output"}]
        edges = chain(["x", "conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "conv3", "bn3", "add.in0"])
        if projection:
            nodes[-3:-3] = [conv("down_conv", "$width * 4", 1, "$stride", 0, "$in_channels"), bn("down_bn")]
            edges += chain(["x", "down_conv", "down_bn", "add.in1"])
        else:
            edges += [{"source": "x", "target": "add.in1"}]
        params = {"in_channels": 64, "width": 64, "stride": 1} if projection else {"width": 64}
        what = ("1x1, 3x3 (strided) and 1x1 convolutions with a projection shortcut" if projection
                else "1x1, 3x3 and 1x1 convolutions with an identity shortcut")
        return {"description": f"torchvision's Bottleneck (v1.5): {what}.", "params": params,
                "nodes": nodes, "edges": edges + chain(["add", "relu3", "y"])}

    stage = {
        "description": "A ResNet-50 stage: a projecting Bottleneck, then identity Bottlenecks.",
        "params": {"in_channels": 64, "width": 64, "stride": 1, "blocks": 3},
        "nodes": [{"id": "x", "type": "Input"},
                  {"id": "down", "type": "DownBottleneck",
                   "params": {"in_channels": "$in_channels", "width": "$width", "stride": "$stride"}},
                  {"id": "rest", "type": "Bottleneck", "params": {"width": "$width", "repeat": "$blocks - 1"}},
                  {"id": "y", "type": "Output"}],
        "edges": chain(["x", "down", "rest", "y"]),
    }
    nodes = stem() + [
        {"id": "layer1", "type": "Stage", "params": {"in_channels": 64, "width": 64, "stride": 1, "blocks": 3}},
        {"id": "layer2", "type": "Stage", "params": {"in_channels": 256, "width": 128, "stride": 2, "blocks": 4}},
        {"id": "layer3", "type": "Stage", "params": {"in_channels": 512, "width": 256, "stride": 2, "blocks": 6}},
        {"id": "layer4", "type": "Stage", "params": {"in_channels": 1024, "width": 512, "stride": 2, "blocks": 3}},
    ] + head(2048)
    doc = {"format": "dlstudio.graph", "version": 2, "name": "resnet50",
           "description": "ResNet-50 (He et al., 2015; torchvision's v1.5, stride on the 3x3):\n25,557,032 parameters.",
           "blocks": {"Bottleneck": bottleneck(False), "DownBottleneck": bottleneck(True), "Stage": stage},
           "nodes": nodes, "edges": chain([n["id"] for n in nodes])}
    save(doc, "resnet50")


def gpt2():
    block = {
        "description": "A GPT-2 layer: pre-norm causal self-attention and a GELU MLP, each with a residual.",
        "params": {"d_model": 768, "heads": 12},
        "nodes": [{"id": "x", "type": "Input"},
                  {"id": "ln_1", "type": "LayerNorm"},
                  {"id": "attn", "type": "MultiheadAttention",
                   "params": {"num_heads": "$heads", "causal": True, "need_weights": False}},
                  {"id": "add_1", "type": "Add"},
                  {"id": "ln_2", "type": "LayerNorm"},
                  {"id": "fc", "type": "Linear", "params": {"out_features": "$d_model * 4"}},
                  {"id": "gelu", "type": "GELU", "params": {"approximate": "tanh"}},
                  {"id": "proj", "type": "Linear", "params": {"out_features": "$d_model"}},
                  {"id": "add_2", "type": "Add"},
                  {"id": "y", "type": "Output"}],
        "edges": chain(["x", "ln_1", "attn.query"]) + [
            {"source": "ln_1", "target": "attn.key"}, {"source": "ln_1", "target": "attn.value"},
            {"source": "attn.output", "target": "add_1.in0"}, {"source": "x", "target": "add_1.in1"}]
        + chain(["add_1", "ln_2", "fc", "gelu", "proj", "add_2.in0"]) + [
            {"source": "add_1", "target": "add_2.in1"}, {"source": "add_2", "target": "y"}],
    }
    nodes = [{"id": "tokens", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
             {"id": "wte", "type": "Embedding", "params": {"num_embeddings": 50257, "embedding_dim": 768}},
             {"id": "wpe", "type": "LearnedPositionalEmbedding", "params": {"max_len": 1024, "dropout": 0.1}},
             {"id": "h", "type": "Block", "params": {"repeat": 12}},
             {"id": "ln_f", "type": "LayerNorm"},
             {"id": "lm_head", "type": "Linear", "params": {"out_features": 50257, "bias": False},
              "tie": {"weight": "wte.weight"}},
             {"id": "logits", "type": "Output"}]
    doc = {"format": "dlstudio.graph", "version": 2, "name": "gpt2_small",
           "description": "GPT-2 small (Radford et al., 2019): 12 layers, 768 wide, 12 heads,\n"
                          "the output head tied to the token embedding: 124,439,808 parameters.",
           "blocks": {"Block": block}, "nodes": nodes, "edges": chain([n["id"] for n in nodes])}
    save(doc, "gpt2_small")


def mamba():
    layer = {
        "description": "A Mamba layer: RMSNorm, the selective state-space mixer, and a residual.",
        "params": {},
        "nodes": [{"id": "x", "type": "Input"}, {"id": "norm", "type": "RMSNorm", "params": {"eps": 1e-05}},
                  {"id": "mixer", "type": "MambaBlock"}, {"id": "add", "type": "Add"},
                  {"id": "y", "type": "Output"}],
        "edges": chain(["x", "norm", "mixer", "add.in0"]) + [{"source": "x", "target": "add.in1"},
                                                             {"source": "add", "target": "y"}],
    }
    nodes = [{"id": "tokens", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
             {"id": "embedding", "type": "Embedding", "params": {"num_embeddings": 50280, "embedding_dim": 768}},
             {"id": "layers", "type": "MambaLayer", "params": {"repeat": 24}},
             {"id": "norm_f", "type": "RMSNorm", "params": {"eps": 1e-05}},
             {"id": "lm_head", "type": "Linear", "params": {"out_features": 50280, "bias": False},
              "tie": {"weight": "embedding.weight"}},
             {"id": "logits", "type": "Output"}]
    doc = {"format": "dlstudio.graph", "version": 2, "name": "mamba_130m",
           "description": "Mamba-130m (Gu and Dao, 2023): 24 Mamba layers with RMSNorm, 768 wide,\n"
                          "the head tied to the embedding: 129,135,360 parameters.",
           "blocks": {"MambaLayer": layer}, "nodes": nodes, "edges": chain([n["id"] for n in nodes])}
    save(doc, "mamba_130m")


def transformer_base():
    enc = {"description": "An encoder layer: self-attention and a ReLU feed-forward, post-norm.",
           "params": {"d_model": 512, "heads": 8, "d_ff": 2048},
           "nodes": [{"id": "x", "type": "Input"},
                     {"id": "layer", "type": "TransformerEncoderLayer",
                      "params": {"nhead": "$heads", "dim_feedforward": "$d_ff", "dropout": 0.1}},
                     {"id": "y", "type": "Output"}],
           "edges": chain(["x", "layer", "y"])}
    dec = {"description": "A decoder layer: causal self-attention, attention to the encoder, feed-forward.",
           "params": {"d_model": 512, "heads": 8, "d_ff": 2048},
           "nodes": [{"id": "x", "type": "Input"}, {"id": "memory", "type": "Input"},
                     {"id": "layer", "type": "TransformerDecoderLayer",
                      "params": {"nhead": "$heads", "dim_feedforward": "$d_ff", "dropout": 0.1, "causal": True}},
                     {"id": "y", "type": "Output"}],
           "edges": [{"source": "x", "target": "layer.tgt"}, {"source": "memory", "target": "layer.memory"},
                     {"source": "layer", "target": "y"}]}
    scale = math.sqrt(512)
    nodes = [{"id": "source", "type": "Input", "params": {"shape": ["S"], "dtype": "int64"}},
             {"id": "target", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
             {"id": "embed", "type": "Embedding", "params": {"num_embeddings": 37000, "embedding_dim": 512}},
             {"id": "target_embed", "type": "Embedding", "params": {"num_embeddings": 37000, "embedding_dim": 512},
              "tie": {"weight": "embed.weight"}},
             {"id": "scale", "type": "Scale", "params": {"factor": scale}},
             {"id": "target_scale", "type": "Scale", "params": {"factor": scale}},
             {"id": "positions", "type": "PositionalEncoding", "params": {"dropout": 0.1}},
             {"id": "target_positions", "type": "PositionalEncoding", "params": {"dropout": 0.1}},
             {"id": "encoder", "type": "EncoderLayer", "params": {"repeat": 6}},
             {"id": "decoder", "type": "DecoderLayer", "params": {"repeat": 6}},
             {"id": "generator", "type": "Linear", "params": {"out_features": 37000, "bias": False},
              "tie": {"weight": "embed.weight"}},
             {"id": "logits", "type": "Output"}]
    edges = chain(["source", "embed", "scale", "positions", "encoder", "decoder.memory"]) + chain(
        ["target", "target_embed", "target_scale", "target_positions", "decoder.x"]) + chain(
        ["decoder", "generator", "logits"])
    doc = {"format": "dlstudio.graph", "version": 2, "name": "transformer_base",
           "description": "The base Transformer (Vaswani et al., 2017): 6+6 post-norm layers,\n"
                          "d_model 512, 8 heads, one embedding shared by source, target and output\n"
                          "projection, sinusoidal positions, embeddings scaled by sqrt(d_model):\n"
                          "63,082,496 parameters (the paper: 65M).",
           "blocks": {"EncoderLayer": enc, "DecoderLayer": dec}, "nodes": nodes, "edges": edges}
    save(doc, "transformer_base")


for make in (resnet18, resnet50, gpt2, mamba, transformer_base):
    make()
