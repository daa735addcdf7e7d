"""Sequence family against torch: shapes, exact parameter counts, FLOPs and initial states."""

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

CASES = [
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 8}, [(5,)], ["int64"]),
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 3, "padding_idx": -1}, [(2, 5)], ["int32"]),
    ("RNN", {"hidden_size": 8}, [(5, 16)], None),
    ("RNN", {"hidden_size": 8, "nonlinearity": "relu", "bias": False, "num_layers": 2}, [(5, 16)], None),
    ("GRU", {"hidden_size": 8, "num_layers": 2, "bidirectional": True, "dropout": 0.5}, [(5, 16)], None),
    ("GRU", {"hidden_size": 4, "batch_first": False}, [(3, 6)], None),
    ("LSTM", {"hidden_size": 8}, [(5, 16)], None),
    ("LSTM", {"hidden_size": 8, "proj_size": 4, "num_layers": 3, "bidirectional": True}, [(5, 16)], None),
    ("LSTM", {"hidden_size": 6, "batch_first": False, "bias": False}, [(5, 16)], None),
]


@pytest.mark.parametrize(("type_name", "params", "shapes", "dtypes"), CASES)
def test_layer_matches_torch(type_name, params, shapes, dtypes):
    check_layer(type_name, params, shapes, dtypes)


@pytest.mark.parametrize(("type_name", "params", "shapes", "dtypes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(type_name, params, shapes, dtypes):
    source = exported_matches_compiled(analyse(type_name, params, shapes, dtypes))
    assert ruff_problems(source) == ""


@pytest.mark.parametrize(("type_name", "params", "shapes", "dtypes"), CASES[2:])
def test_flops_match_torch_flop_counter(type_name, params, shapes, dtypes):
    """Counted without oneDNN, so that torch runs the recurrence as matrix products it counts."""
    analysis = analyse(type_name, params, shapes, dtypes)
    module = compile_graph(analysis).eval()
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        module(torch.randn(2, *shapes[0]))
    assert 2 * analysis.flops["layer"] * 2 == counter.get_total_flops()


def test_constructor_reads_like_hand_written_torch():
    source = exported_matches_compiled(analyse("LSTM", {"hidden_size": 32, "num_layers": 2}, [(5, 16)]))
    assert "self.layer = nn.LSTM(16, 32, num_layers=2, batch_first=True)" in source
    assert "layer_output, (layer_h_n, layer_c_n) = self.layer(x0)" in source


def test_symbolic_length_flows_through():
    for type_name in ("RNN", "GRU", "LSTM"):
        analysis = check_layer(type_name, {"hidden_size": 8}, [("T", 16)], sizes={"T": 5})
        assert analysis.ports[("layer", "output")].shape == ("N", "T", 8)
        assert analysis.ports[("layer", "h_n")].shape == (1, "N", 8)
        assert analysis.flops["layer"] is None
    analysis = check_layer("Embedding", {"num_embeddings": 10, "embedding_dim": 4}, [("T",)], ["int64"], sizes={"T": 3})
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 4)


SEQ2SEQ = {
    "format": "dlstudio.graph", "version": 1, "name": "seq2seq",
    "nodes": [
        {"id": "source", "type": "Input", "params": {"shape": ["S"], "dtype": "int64"}},
        {"id": "target", "type": "Input", "params": {"shape": ["T"], "dtype": "int64"}},
        {"id": "embed_source", "type": "Embedding", "params": {"num_embeddings": 10, "embedding_dim": 8}},
        {"id": "embed_target", "type": "Embedding", "params": {"num_embeddings": 10, "embedding_dim": 8}},
        {"id": "encoder", "type": "LSTM", "params": {"hidden_size": 16, "num_layers": 2}},
        {"id": "decoder", "type": "LSTM", "params": {"hidden_size": 16, "num_layers": 2}},
        {"id": "last", "type": "SelectIndex", "params": {"dim": 0, "index": -1}},
        {"id": "logits", "type": "Linear", "params": {"out_features": 10}},
        {"id": "out", "type": "Output"},
        {"id": "state", "type": "Output"},
    ],
    "edges": [
        {"source": "source", "target": "embed_source"}, {"source": "target", "target": "embed_target"},
        {"source": "embed_source", "target": "encoder.input"},
        {"source": "embed_target", "target": "decoder.input"},
        {"source": "encoder.h_n", "target": "decoder.h_0"}, {"source": "encoder.c_n", "target": "decoder.c_0"},
        {"source": "decoder.output", "target": "logits"}, {"source": "logits", "target": "out"},
        {"source": "decoder.h_n", "target": "last"}, {"source": "last", "target": "state"},
    ],
}


def test_initial_states_come_from_another_recurrent_layer():
    analysis = analyze(load_graph(SEQ2SEQ))
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    assert analysis.ports[("logits", "output")].shape == ("N", "T", 10)
    assert analysis.ports[("last", "output")].shape == ("N", 16)
    source = exported_matches_compiled(analysis, sizes={"S": 4, "T": 3})
    assert "decoder_output, (decoder_h_n, decoder_c_n) = self.decoder(\n" in source
    assert "embed_target, (encoder_h_n, encoder_c_n)" in source
    assert ruff_problems(source) == ""
    module = compile_graph(analysis).eval()
    source_ids, target_ids = torch.randint(0, 10, (2, 4)), torch.randint(0, 10, (2, 3))
    with torch.no_grad():
        logits, state = module(source_ids, target_ids)
        _, (h, c) = module.encoder(module.embed_source(source_ids))
        expected, (h_n, _) = module.decoder(module.embed_target(target_ids), (h, c))
    torch.testing.assert_close(logits, module.logits(expected))
    torch.testing.assert_close(state, h_n[-1])


def test_mismatched_initial_state_names_both_shapes():
    graph = load_graph(SEQ2SEQ)
    graph.node("decoder").params["num_layers"] = 1
    messages = [d.one_line() for d in analyze(graph).errors]
    assert messages == [
        "decoder: LSTM 'decoder' needs h_0 of shape [1, N, 16] (float32) but gets [2, N, 16] (float32) "
        "from 'encoder' (feed it the h_n of another LSTM with the same num_layers, bidirectional and sizes)"]


def test_lstm_needs_both_states():
    graph = SEQ2SEQ | {"edges": [e for e in SEQ2SEQ["edges"] if e["target"] != "decoder.c_0"]}
    assert [d.one_line() for d in analyze(load_graph(graph)).errors] == [
        "decoder: LSTM 'decoder' gets h_0 but nothing on c_0: an LSTM starts from both states or from "
        "zeros (connect c_0, or neither)"]


@pytest.mark.parametrize(("type_name", "params", "shapes", "dtypes", "message"), [
    ("Embedding", {}, [(5,)], ["float32"],
     "Embedding 'layer' needs int64 token ids but gets float32 from 'x0' "
     "(set the Input's dtype to int64 (token ids), or remove the Embedding)"),
    ("Embedding", {"num_embeddings": 4, "padding_idx": 4}, [(5,)], ["int64"],
     "Embedding 'layer' has padding_idx=4 outside its 4 embeddings (use a padding_idx between -4 and 3, or clear it)"),
    ("LSTM", {}, [(16,)], None,
     "LSTM 'layer' expects a 3-D input (batch included) but gets 2-D [N, 16] from 'x0' "
     "(reshape the input (Flatten, Unsqueeze or Reshape) before this node)"),
    ("GRU", {"input_size": 8}, [(5, 16)], None,
     "GRU 'layer' expects feature size (last dimension) 8 but gets 16 from 'x0' "
     "(remove input_size to infer it, or set it to 16)"),
    ("LSTM", {"hidden_size": 8, "proj_size": 8}, [(5, 16)], None,
     "LSTM 'layer' has proj_size=8, not smaller than hidden_size=8 (use a proj_size below 8, or 0 for no projection)"),
    ("RNN", {}, [(5, 16)], ["int64"],
     "RNN 'layer' needs a floating-point input but gets int64 (feed it from an Embedding or a float Input)"),
])
def test_diagnostics_say_what_is_wrong_and_the_fix(type_name, params, shapes, dtypes, message):
    assert errors(type_name, params, shapes, dtypes) == [f"layer: {message}"]


def test_dropout_on_one_layer_is_a_warning():
    analysis = analyse("GRU", {"dropout": 0.2}, [(5, 16)])
    assert analysis.ok
    assert [d.one_line() for d in analysis.diagnostics if d.severity == "warning"] == [
        "layer: GRU 'layer' has dropout=0.2 but one layer: torch applies it only between layers, "
        "so it does nothing (set num_layers above 1, or dropout to 0)"]


# --- property tests ---

def _reference(factory):
    """The torch module and a reference that runs it, or a reference that re-raises what the
    constructor raised (torch refusing the parameters)."""
    try:
        module = factory().eval()
    except REFUSALS as error:
        def refuse(*inputs, error=error):
            raise error
        return None, refuse
    return module, module


@EXAMPLES
@given(st.data())
def test_recurrent_layers_agree_with_torch(data):
    type_name = data.draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    params = {
        "hidden_size": data.draw(st.integers(1, 6)),
        "num_layers": data.draw(st.integers(1, 3)),
        "bias": data.draw(st.booleans()),
        "batch_first": data.draw(st.booleans()),
        "bidirectional": data.draw(st.booleans()),
        "dropout": data.draw(st.sampled_from([0.0, 0.3])),
    }
    if type_name == "LSTM":
        params["proj_size"] = data.draw(st.sampled_from([0, 0, 1, 2, 4]))
    if type_name == "RNN":
        params["nonlinearity"] = data.draw(st.sampled_from(["tanh", "relu"]))
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=2, max_size=3)))
    module, reference = _reference(lambda: getattr(nn, type_name)(shape[-1], **params))
    agree(type_name, params, [shape], reference, module=module)


@EXAMPLES
@given(st.data())
def test_embedding_agrees_with_torch(data):
    count = data.draw(st.integers(4, 8))
    params = {"num_embeddings": count, "embedding_dim": data.draw(st.integers(1, 6)),
              "padding_idx": data.draw(st.none() | st.integers(-10, 9))}
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    dtype = data.draw(st.sampled_from(["int64", "int32", "float32"]))
    module, reference = _reference(lambda: nn.Embedding(**params))
    agree("Embedding", params, [shape], reference, [dtype], module=module)
