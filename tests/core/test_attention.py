"""Attention family against torch: shapes, parameter counts, FLOPs, causal masks, exports."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlstudio import analyze, compile_graph, load_graph
from tests.core.layer_check import check_layer
from tests.core.torch_agree import (
    REFUSALS,
    agree,
    analyse,
    errors,
    exported_matches_compiled,
    ruff_problems,
)

EXAMPLES = settings(max_examples=40, deadline=None)
MHA, ENCODER, DECODER = "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer"

CASES = [
    (MHA, {"num_heads": 4}, [(5, 16)]),
    (MHA, {"num_heads": 4}, [(5, 16), (7, 16), (7, 16)]),
    (MHA, {"num_heads": 2, "causal": True}, [(5, 16)]),
    (MHA, {"num_heads": 2, "causal": True, "need_weights": False}, [(5, 16)]),
    (MHA, {"num_heads": 2, "add_bias_kv": True, "add_zero_attn": True, "average_attn_weights": False},
     [(5, 16), (7, 8), (7, 6)]),
    (MHA, {"num_heads": 1, "bias": False, "batch_first": False}, [(3, 8)]),
    (ENCODER, {"nhead": 4, "dim_feedforward": 32}, [(5, 16)]),
    (ENCODER, {"nhead": 4, "dim_feedforward": 32, "causal": True}, [(5, 16)]),
    (ENCODER, {"nhead": 2, "dim_feedforward": 8, "bias": False, "activation": "gelu", "norm_first": True},
     [(5, 16)]),
    (DECODER, {"nhead": 4, "dim_feedforward": 32}, [(5, 16), (7, 16)]),
    (DECODER, {"nhead": 2, "dim_feedforward": 8, "causal": True, "bias": False}, [(5, 16), (3, 16)]),
    ("PositionalEncoding", {}, [(5, 15)]),
    ("PositionalEncoding", {"max_len": 5, "dropout": 0.1}, [(5, 16)]),
    ("LearnedPositionalEmbedding", {"max_len": 8}, [(5, 16)]),
    ("ScaledDotProductAttention", {"causal": True}, [(4, 5, 8), (4, 5, 8), (4, 5, 6)]),
    ("ScaledDotProductAttention", {"scale": 0.5}, [(2, 5, 8), (2, 7, 8), (2, 7, 3)]),
]


@pytest.mark.parametrize(("type_name", "params", "shapes"), CASES)
def test_layer_matches_torch(type_name, params, shapes):
    # torch's fused inference kernels hide part of the work from the FLOP counter: see below
    check_layer(type_name, params, shapes, flops=False)


@pytest.mark.parametrize(("type_name", "params", "shapes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(type_name, params, shapes):
    source = exported_matches_compiled(analyse(type_name, params, shapes))
    assert ruff_problems(source) == ""


COUNTED = [case for case in CASES[:11] if case[1].get("need_weights", True) and case[1].get("batch_first", True)]


@pytest.mark.parametrize(("type_name", "params", "shapes"), COUNTED)
def test_flops_match_torch_flop_counter(type_name, params, shapes):
    """Counted while training, where torch runs attention as matrix products it counts.

    (With need_weights off, the CPU's fused attention kernel goes uncounted; the work is the
    same, see the next test.)
    """
    analysis = analyse(type_name, params, shapes)
    module = compile_graph(analysis).train()
    with FlopCounterMode(display=False) as counter:
        module(*[torch.randn(2, *shape) for shape in shapes])
    assert 2 * analysis.flops["layer"] * 2 == counter.get_total_flops()


@pytest.mark.parametrize("params", [{}, {"causal": True}, {"scale": 0.25}])
def test_scaled_dot_product_attention_is_torch_s(params):
    def reference(q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=params.get("causal", False), scale=params.get("scale"))

    agree("ScaledDotProductAttention", params, [(2, 6, 8), (2, 6, 8), (2, 6, 4)], reference)
    assert errors("ScaledDotProductAttention", params, [(2, 6, 8), (2, 7, 8), (2, 6, 4)]) == [
        "layer: ScaledDotProductAttention 'layer' needs key and value of one length and leading dims "
        "equal to the query's, but gets [N, 2, 6, 8], [N, 2, 7, 8] and [N, 2, 6, 4] "
        "(reshape the inputs to [N, heads, T, features])"]


def test_attention_flops_do_not_depend_on_returning_weights():
    with_weights = analyse(MHA, {"num_heads": 2}, [(5, 16)]).flops["layer"]
    assert analyse(MHA, {"num_heads": 2, "need_weights": False}, [(5, 16)]).flops["layer"] == with_weights
    assert with_weights == 4 * 5 * 16 * 16 + 2 * 5 * 5 * 16


def test_forward_lines_read_like_hand_written_torch():
    source = exported_matches_compiled(analyse(MHA, {"num_heads": 2, "need_weights": False}, [(5, 16)]))
    assert "self.layer = nn.MultiheadAttention(16, 2, batch_first=True)" in source
    assert "layer_output, _ = self.layer(x0, x0, x0, need_weights=False)" in source
    assert "def causal_mask" not in source
    source = exported_matches_compiled(analyse(MHA, {"num_heads": 2}, [(5, 16), (7, 8), (7, 8)]))
    assert "nn.MultiheadAttention(16, 2, kdim=8, vdim=8, batch_first=True)" in source
    source = exported_matches_compiled(analyse(DECODER, {"nhead": 2, "causal": True}, [(5, 16), (3, 16)]))
    assert "layer = self.layer(x0, x1, tgt_mask=causal_mask(x0), tgt_is_causal=True)" in source
    assert "def causal_mask(x: torch.Tensor, dim: int = 1) -> torch.Tensor:" in source
    source = exported_matches_compiled(analyse("PositionalEncoding", {}, [(5, 16)]))
    assert "class PositionalEncoding(nn.Module):" in source and "import math\n" in source
    assert "self.layer = PositionalEncoding(16)" in source


def test_symbolic_length_flows_through():
    sizes = {"T": 5}
    analysis = check_layer(MHA, {"num_heads": 4, "causal": True}, [("T", 16)], flops=False, sizes=sizes)
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 16)
    assert analysis.ports[("layer", "weights")].shape == ("N", "T", "T")
    analysis = check_layer(MHA, {"num_heads": 4, "add_bias_kv": True}, [("T", 16)], flops=False, sizes=sizes)
    assert analysis.ports[("layer", "weights")].shape == ("N", "T", "T + 1")
    for type_name, shapes in ((ENCODER, [("T", 16)]), (DECODER, [("T", 16), ("S", 16)])):
        analysis = check_layer(type_name, {"nhead": 4, "causal": True}, shapes, flops=False, sizes={"T": 5, "S": 3})
        assert analysis.ports[("layer", "output")].shape == ("N", "T", 16)
        assert analysis.flops["layer"] is None
    analysis = check_layer("PositionalEncoding", {}, [("T", 16)], sizes=sizes)
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 16)


TINY_GPT = {
    "format": "dlstudio.graph", "version": 1, "name": "tiny gpt",
    "nodes": [
        {"id": "tokens", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
        {"id": "embed", "type": "Embedding", "params": {"num_embeddings": 10, "embedding_dim": 16}},
        {"id": "position", "type": "PositionalEncoding", "params": {"max_len": 64}},
        {"id": "block", "type": ENCODER, "params": {"nhead": 4, "dim_feedforward": 32, "causal": True}},
        {"id": "head", "type": "Linear", "params": {"out_features": 10}},
        {"id": "logits", "type": "Output"},
    ],
    "edges": [
        {"source": "tokens", "target": "embed"}, {"source": "embed", "target": "position"},
        {"source": "position", "target": "block"}, {"source": "block", "target": "head"},
        {"source": "head", "target": "logits"},
    ],
}


def test_causal_model_does_not_look_ahead():
    analysis = analyze(load_graph(TINY_GPT))
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    source = exported_matches_compiled(analysis, sizes={"T": 6})
    assert ruff_problems(source) == ""
    module = compile_graph(analysis).eval()
    tokens = torch.randint(0, 10, (2, 6))
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 10
    with torch.no_grad():
        before, after = module(tokens), module(changed)
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_positional_encoding_is_the_sinusoid_and_not_saved():
    analysis = analyse("PositionalEncoding", {"max_len": 10}, [(4, 6)])
    module = compile_graph(analysis).eval()
    assert list(module.state_dict()) == []
    position, i = torch.arange(10.0).unsqueeze(1), torch.arange(0, 6, 2)
    angle = position / 10000 ** (i / 6)
    expected = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(1)
    x = torch.zeros(1, 4, 6)
    torch.testing.assert_close(module(x)[0], expected[:4])
    assert math.isclose(module.layer.pe[3, 1].item(), math.cos(3.0), rel_tol=1e-6)


@pytest.mark.parametrize(("type_name", "params", "shapes", "message"), [
    (MHA, {"num_heads": 5}, [(5, 16)],
     "MultiheadAttention 'layer' has embed_dim=16, which num_heads=5 does not divide "
     "(use num_heads among 1, 2, 4, 8, 16, or change embed_dim)"),
    (MHA, {"num_heads": 2, "causal": True}, [(5, 16), (7, 16), (7, 16)],
     "MultiheadAttention 'layer' is causal, so query and key need the same length, but gets [N, 5, 16] "
     "and [N, 7, 16] (turn causal off for attention between sequences of different lengths)"),
    (MHA, {"num_heads": 2}, [(5, 16), (7, 16), (6, 16)],
     "MultiheadAttention 'layer' needs key and value with the same length, but gets [N, 7, 16] and "
     "[N, 6, 16] (make the length of value equal to that of key)"),
    (MHA, {"num_heads": 2, "kdim": 8}, [(5, 16), (7, 16), (7, 16)],
     "MultiheadAttention 'layer' expects key size (last dimension) 8 but gets 16 from 'x1' "
     "(remove kdim to infer it, or set it to 16)"),
    (MHA, {}, [(16,)],
     "MultiheadAttention 'layer' expects a 3-D query [N, T, features] but gets 2-D [N, 16] from 'x0' "
     "(reshape it to batch, time and features first)"),
    (ENCODER, {"nhead": 3}, [(5, 16)],
     "TransformerEncoderLayer 'layer' has d_model=16, which nhead=3 does not divide "
     "(use nhead among 1, 2, 4, 8, 16, or change d_model)"),
    (DECODER, {"nhead": 2}, [(5, 16), (5, 8)],
     "TransformerDecoderLayer 'layer' needs memory with d_model=16 features but gets [N, 5, 8] from 'x1' "
     "(project the memory to 16 features (Linear))"),
    ("PositionalEncoding", {"max_len": 4}, [(5, 16)],
     "PositionalEncoding 'layer' gets sequences of length 5 in [N, 5, 16], longer than max_len=4 "
     "(set max_len to at least 5)"),
])
def test_diagnostics_say_what_is_wrong_and_the_fix(type_name, params, shapes, message):
    assert errors(type_name, params, shapes) == [f"layer: {message}"]


# --- property tests ---

def _built(factory):
    """The torch module, or None and what its constructor raised (torch refusing)."""
    try:
        return factory().eval(), None
    except REFUSALS as error:
        return None, error


def _mask(x, batch_first):
    return nn.Transformer.generate_square_subsequent_mask(x.shape[1 if batch_first else 0])


@EXAMPLES
@given(st.data())
def test_multihead_attention_agrees_with_torch(data):
    draw = data.draw
    heads = draw(st.integers(1, 4))
    embed = draw(st.integers(1, 8) | st.integers(1, 2).map(lambda k: k * heads))
    kdim, vdim = draw(st.sampled_from([embed, 3])), draw(st.sampled_from([embed, 5]))
    length, source = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    flags = {name: draw(st.booleans()) for name in
             ("bias", "add_bias_kv", "add_zero_attn", "batch_first", "need_weights", "average_attn_weights", "causal")}
    value_length = draw(st.sampled_from([source, source, 3]))
    ctor = {k: flags[k] for k in ("bias", "add_bias_kv", "add_zero_attn", "batch_first")}
    module, error = _built(lambda: nn.MultiheadAttention(embed, heads, kdim=kdim, vdim=vdim, **ctor))

    def reference(q, k, v):
        if error:
            raise error
        mask = _mask(q, flags["batch_first"]) if flags["causal"] else None
        return module(q, k, v, need_weights=flags["need_weights"], attn_mask=mask,
                      average_attn_weights=flags["average_attn_weights"], is_causal=flags["causal"])

    agree(MHA, {"num_heads": heads, **flags}, [(length, embed), (source, kdim), (value_length, vdim)],
          reference, module=module)


@EXAMPLES
@given(st.data())
def test_transformer_layers_agree_with_torch(data):
    draw = data.draw
    decoder = draw(st.booleans())
    nhead = draw(st.integers(1, 4))
    d_model = draw(st.integers(1, 8) | st.integers(1, 2).map(lambda k: k * nhead))
    params = {"nhead": nhead, "dim_feedforward": draw(st.integers(1, 8)),
              "activation": draw(st.sampled_from(["relu", "gelu"])),
              **{k: draw(st.booleans()) for k in ("batch_first", "norm_first", "bias")}}
    causal = draw(st.booleans())
    shapes = [(draw(st.integers(1, 4)), d_model)]
    if decoder:
        shapes.append((draw(st.integers(1, 4)), draw(st.sampled_from([d_model, d_model, 3]))))
    cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    module, error = _built(lambda: cls(d_model, **params))

    def reference(x, *memory):
        if error:
            raise error
        mask = _mask(x, params["batch_first"]) if causal else None
        if decoder:
            return module(x, *memory, tgt_mask=mask, tgt_is_causal=causal)
        return module(x, src_mask=mask, is_causal=causal)

    agree(DECODER if decoder else ENCODER, {**params, "causal": causal}, shapes, reference, module=module)


@EXAMPLES
@given(st.data())
def test_positional_layers_agree_with_the_formulas(data):
    draw = data.draw
    d_model, length, max_len = draw(st.integers(1, 9)), draw(st.integers(1, 6)), draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(["float32", "float64", "bfloat16", "int64"]))
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    angle = position / 10000 ** (torch.arange(0, d_model, 2) / d_model)
    table = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(1)[:, :d_model].float()

    def sinusoid(x):
        if not x.is_floating_point() or x.shape[1] > max_len:
            raise ValueError("refused")
        return x + table[: x.shape[1]]

    agree("PositionalEncoding", {"max_len": max_len}, [(length, d_model)], sinusoid, [dtype])
    learned = nn.Module()
    learned.weight = nn.Parameter(torch.randn(max_len, d_model))

    def add_learned(x):
        if not x.is_floating_point() or x.shape[1] > max_len:
            raise ValueError("refused")
        return x + learned.weight[: x.shape[1]]

    agree("LearnedPositionalEmbedding", {"max_len": max_len}, [(length, d_model)], add_learned, [dtype],
          module=learned)


def test_a_node_named_like_a_helper_does_not_shadow_it():
    graph = load_graph(TINY_GPT)
    graph.node("position").id = "causal_mask"
    for edge in graph.edges:
        edge.source = edge.source.replace("position", "causal_mask")
        edge.target = edge.target.replace("position", "causal_mask")
    source = exported_matches_compiled(analyze(graph), sizes={"T": 3})
    assert "causal_mask_ = self.causal_mask(embed)" in source
    assert "src_mask=causal_mask(causal_mask_)" in source
