"""Write the block examples of issues 11 and 15 into graphs/.

Run from the repository root: python scripts/block_examples.py. Tests import the generators
(``bert_doc``, ``mobilenet_v2_doc``) to build the same layouts at a small size.
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


def bert_layer(eps: float) -> dict:
    """BERT's layer (Hugging Face's BertLayer): separate query, key and value projections split
    into heads, attention, then post-norm residual attention output and GELU feed-forward."""
    def heads(id_):
        return [{"id": f"{id_}_heads", "type": "Unflatten", "params": {"dim": -1, "unflattened_size": ["$heads", -1]}},
                {"id": f"{id_}_t", "type": "Transpose", "params": {"dim0": 1, "dim1": 2}}]

    def linear(id_, out):
        return {"id": id_, "type": "Linear", "params": {"out_features": out}}

    norm = {"type": "LayerNorm", "params": {"eps": eps}}
    nodes = [{"id": "x", "type": "Input"}]
    edges = []
    for id_ in ("query", "key", "value"):
        nodes += [linear(id_, "$d_model"), *heads(id_)]
        edges += chain(["x", id_, f"{id_}_heads", f"{id_}_t", f"attention.{id_}"])
    nodes += [{"id": "attention", "type": "ScaledDotProductAttention"},
              {"id": "merge_t", "type": "Transpose", "params": {"dim0": 1, "dim1": 2}},
              {"id": "merge", "type": "Flatten", "params": {"start_dim": 2}},
              linear("attention_out", "$d_model"), {"id": "attention_dropout", "type": "Dropout", "params": {"p": 0.1}},
              {"id": "attention_add", "type": "Add"}, {"id": "attention_norm", **norm},
              linear("intermediate", "$d_ff"), {"id": "gelu", "type": "GELU"}, linear("output", "$d_model"),
              {"id": "output_dropout", "type": "Dropout", "params": {"p": 0.1}},
              {"id": "output_add", "type": "Add"}, {"id": "output_norm", **norm}, {"id": "y", "type": "Output"}]
    edges += chain(["attention", "merge_t", "merge", "attention_out", "attention_dropout", "attention_add.in0"])
    edges += [{"source": "x", "target": "attention_add.in1"}]
    edges += chain(["attention_add", "attention_norm", "intermediate", "gelu", "output", "output_dropout",
                    "output_add.in0"])
    edges += [{"source": "attention_norm", "target": "output_add.in1"}] + chain(["output_add", "output_norm", "y"])
    return {"description": "A BERT layer: self-attention (separate query, key and value, no padding mask) and "
                           "a GELU feed-forward, each added back and layer-normed (post-norm).",
            "params": {"d_model": 768, "heads": 12, "d_ff": 3072}, "nodes": nodes, "edges": edges}


def bert_doc(vocab=30522, hidden=768, layers=12, heads=12, intermediate=3072, positions=512, types=2):
    """BERT (Hugging Face's BertModel, pooler included) at the given size."""
    eps = 1e-12
    nodes = [{"id": "input_ids", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
             {"id": "token_type_ids", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
             {"id": "word_embeddings", "type": "Embedding", "params": {"num_embeddings": vocab, "embedding_dim": hidden}},
             {"id": "token_type_embeddings", "type": "Embedding",
              "params": {"num_embeddings": types, "embedding_dim": hidden}},
             {"id": "embeddings_add", "type": "Add"},
             {"id": "position_embeddings", "type": "LearnedPositionalEmbedding", "params": {"max_len": positions}},
             {"id": "embeddings_norm", "type": "LayerNorm", "params": {"eps": eps}},
             {"id": "embeddings_dropout", "type": "Dropout", "params": {"p": 0.1}},
             {"id": "encoder", "type": "BertLayer",
              "params": {"repeat": layers, "d_model": hidden, "heads": heads, "d_ff": intermediate}},
             {"id": "hidden", "type": "Output"},
             {"id": "first_token", "type": "SelectIndex", "params": {"dim": 1, "index": 0}},
             {"id": "pooler", "type": "Linear", "params": {"out_features": hidden}},
             {"id": "pooler_tanh", "type": "Tanh"},
             {"id": "pooled", "type": "Output"}]
    edges = chain(["input_ids", "word_embeddings", "embeddings_add.in0"]) + chain(
        ["token_type_ids", "token_type_embeddings", "embeddings_add.in1"]) + chain(
        ["embeddings_add", "position_embeddings", "embeddings_norm", "embeddings_dropout", "encoder", "hidden"]) + chain(
        ["encoder", "first_token", "pooler", "pooler_tanh", "pooled"])
    return {"format": "dlstudio.graph", "version": 2, "name": "bert_base",
            "description": "BERT-base, uncased (Devlin et al., 2018) as Hugging Face's BertModel:\n"
                           "12 post-norm layers, 768 wide, 12 heads, GELU, learned positions and\n"
                           "token types, the pooler on the first token; no padding mask:\n"
                           "109,482,240 parameters.",
            "blocks": {"BertLayer": bert_layer(eps)}, "nodes": nodes, "edges": edges}


def bert():
    save(bert_doc(), "bert_base")


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: channels rounded to a multiple of 8, at most 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


#: MobileNetV2's inverted residual stages: expansion t, channels c, blocks n, first stride s.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2_blocks() -> dict:
    conv_bn = {"description": "torchvision's Conv2dNormActivation: convolution, batch norm, ReLU6.",
               "params": {"in_channels": 3, "out_channels": 32, "kernel_size": 3, "stride": 1, "groups": 1},
               "nodes": [{"id": "x", "type": "Input"},
                         {"id": "conv", "type": "Conv2d",
                          "params": {"in_channels": "$in_channels", "out_channels": "$out_channels",
                                     "kernel_size": "$kernel_size", "stride": "$stride",
                                     "padding": "$(kernel_size - 1) // 2", "groups": "$groups", "bias": False}},
                         bn("bn"), {"id": "relu", "type": "ReLU6", "params": {"inplace": True}},
                         {"id": "y", "type": "Output"}],
               "edges": chain(["x", "conv", "bn", "relu", "y"])}

    def inverted(expand: bool, residual: bool) -> dict:
        width = "$channels * expand" if expand else "$channels"
        nodes = [{"id": "x", "type": "Input"}]
        path = ["x"]
        if expand:
            nodes.append({"id": "expand", "type": "ConvBNReLU",
                          "params": {"in_channels": "$channels", "out_channels": width, "kernel_size": 1}})
            path.append("expand")
        nodes += [{"id": "depthwise", "type": "ConvBNReLU",
                   "params": {"in_channels": width, "out_channels": width, "stride": "$stride" if not residual else 1,
                              "groups": width}},
                  conv("project", "$out_channels" if not residual else "$channels", 1), bn("project_bn")]
        path += ["depthwise", "project", "project_bn"]
        params = {"channels": 16, "expand": 6} if expand else {"channels": 32}
        if residual:
            nodes.append({"id": "add", "type": "Add"})
            edges = chain([*path, "add.in0"]) + [{"source": "x", "target": "add.in1"}] + chain(["add", "y"])
        else:
            params = {**params, "out_channels": 24, "stride": 2}
            edges = chain([*path, "y"])
        nodes.append({"id": "y", "type": "Output"})
        what = ("expand 1x1, depthwise 3x3, linear 1x1" if expand else "depthwise 3x3, linear 1x1")
        shortcut = "plus an identity shortcut" if residual else "no shortcut"
        return {"description": f"torchvision's InvertedResidual: {what}, {shortcut}.",
                "params": params, "nodes": nodes, "edges": edges}

    stage = {"description": "A MobileNetV2 stage: a changing inverted residual, then residual ones.",
             "params": {"channels": 16, "out_channels": 24, "stride": 2, "blocks": 2},
             "nodes": [{"id": "x", "type": "Input"},
                       {"id": "down", "type": "Inverted",
                        "params": {"channels": "$channels", "out_channels": "$out_channels", "stride": "$stride"}},
                       {"id": "rest", "type": "Residual",
                        "params": {"channels": "$out_channels", "repeat": "$blocks - 1"}},
                       {"id": "y", "type": "Output"}],
             "edges": chain(["x", "down", "rest", "y"])}
    return {"ConvBNReLU": conv_bn, "Separable": inverted(False, False), "Inverted": inverted(True, False),
            "Residual": inverted(True, True), "Stage": stage}


def mobilenet_v2_doc(width=1.0, size=224, classes=1000):
    """torchvision's mobilenet_v2 with width multiplier ``width``."""
    channels = make_divisible(32 * width)
    last = make_divisible(1280 * max(1.0, width))
    nodes = [{"id": "image", "type": "Input", "params": {"shape": [3, size, size]}},
             {"id": "stem", "type": "ConvBNReLU", "params": {"in_channels": 3, "out_channels": channels, "stride": 2}}]
    for number, (t, c, n, s) in enumerate(MOBILENET_V2_STAGES, start=1):
        out = make_divisible(c * width)
        params = {"channels": channels, "out_channels": out, "stride": s}
        if t == 1:
            nodes.append({"id": f"block{number}", "type": "Separable", "params": params})
        elif n == 1:
            nodes.append({"id": f"block{number}", "type": "Inverted", "params": params})
        else:
            nodes.append({"id": f"stage{number}", "type": "Stage", "params": {**params, "blocks": n}})
        channels = out
    nodes += [{"id": "head", "type": "ConvBNReLU",
               "params": {"in_channels": channels, "out_channels": last, "kernel_size": 1}},
              {"id": "avgpool", "type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
              {"id": "flatten", "type": "Flatten"},
              {"id": "dropout", "type": "Dropout", "params": {"p": 0.2}},
              {"id": "classifier", "type": "Linear", "params": {"out_features": classes}},
              {"id": "logits", "type": "Output"}]
    return {"format": "dlstudio.graph", "version": 2, "name": "mobilenet_v2",
            "description": "MobileNetV2 (Sandler et al., 2018) as in torchvision: inverted residual blocks\n"
                           "(1x1 expand, 3x3 depthwise, linear 1x1), ReLU6: 3,504,872 parameters.",
            "blocks": mobilenet_v2_blocks(), "nodes": nodes, "edges": chain([n["id"] for n in nodes])}


def mobilenet_v2():
    save(mobilenet_v2_doc(), "mobilenet_v2")


if __name__ == "__main__":
    for make in (resnet18, resnet50, gpt2, mamba, transformer_base, bert, mobilenet_v2):
        make()
