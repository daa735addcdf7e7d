"""Merge family against torch: broadcasting, dtype promotion, pieces on numbered ports."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlstudio import analyze, load_graph
from dlstudio.core.catalogue._rules import promote
from dlstudio.core.tensor import DTYPES, TensorType
from tests.core.layer_check import check_layer, layer_graph
from tests.core.torch_agree import agree, analyse, errors, exported_matches_compiled, ruff_problems

EXAMPLES = settings(max_examples=50, deadline=None)
#: Sizes for property tests; 2 is the test batch, so a size of 2 facing the batch N would
#: broadcast in torch by coincidence while DL Studio (rightly) refuses the symbolic N.
SIZES = st.sampled_from([1, 3, 4])

CASES = [
    ("Add", {}, [(3, 4), (3, 4)], None),
    ("Add", {}, [(3, 4), (1, 4), (3, 1)], None),
    ("Add", {}, [(3, 4), (3, 4)], ["float32", "int64"]),
    ("Multiply", {}, [(3, 4), (3, 1)], None),
    ("Multiply", {}, [(5,), (5,)], ["int32", "bool"]),
    ("Concat", {}, [(3, 4), (5, 4)], None),
    ("Concat", {"dim": -1}, [(3, 4), (3, 1), (3, 2)], ["float16", "float32", "float32"]),
    ("Stack", {}, [(3, 4), (3, 4)], None),
    ("Stack", {"dim": -1}, [(3,), (3,), (3,)], None),
    ("MatMul", {}, [(3, 4), (4, 5)], None),
    ("MatMul", {}, [(2, 3, 4), (1, 4, 5)], None),
    ("Split", {"split_size_or_sections": [1, 2, 3]}, [(6, 4)], None),
    ("Split", {"split_size_or_sections": [2, 2], "dim": -1}, [(6, 4)], None),
    ("Chunk", {"chunks": 3, "dim": -1}, [(6, 7)], None),
    ("Chunk", {}, [(6, 4)], None),
    ("SelectIndex", {}, [(6, 4)], None),
    ("SelectIndex", {"dim": -2, "index": 2}, [(6, 4, 3)], None),
    ("SelectIndex", {"dim": 0, "index": 0}, [(6,)], None),
    ("Mean", {"dim": [1, 2]}, [(6, 4, 3)], None),
    ("Sum", {"keepdim": True}, [(6, 4)], None),
    ("Scale", {"factor": 22.627416997969522}, [(3, 4)], None),
    ("Sum", {"dim": -1}, [(6, 4)], ["bool"]),
    ("Scale", {"factor": 0.125}, [(6, 4)], None),
    ("Scale", {"factor": -3.0}, [(2, 5, 4)], ["float16"]),
]


@pytest.mark.parametrize(("type_name", "params", "shapes", "dtypes"), CASES)
def test_layer_matches_torch(type_name, params, shapes, dtypes):
    check_layer(type_name, params, shapes, dtypes)


@pytest.mark.parametrize(("type_name", "params", "shapes", "dtypes"), CASES)
def test_export_is_ruff_clean_and_loads_compiled_weights(type_name, params, shapes, dtypes):
    source = exported_matches_compiled(analyse(type_name, params, shapes, dtypes))
    assert ruff_problems(source) == ""


def test_forward_lines_read_like_hand_written_torch():
    lines = [
        ("Add", {}, [(4,), (4,), (4,)], "layer = x0 + x1 + x2"),
        ("MatMul", {}, [(3, 4), (4, 3)], "layer = x0 @ x1"),
        ("Concat", {}, [(4,), (4,)], "layer = torch.cat([x0, x1], dim=1)"),
        ("Split", {"split_size_or_sections": [1, 3]}, [(4,)],
         "layer_out0, layer_out1 = x0.split((1, 3), dim=1)"),
        ("Chunk", {}, [(4,)], "layer_out0, layer_out1 = x0.chunk(2, dim=1)"),
        ("SelectIndex", {}, [(4, 3)], "layer = x0[:, -1]"),
        ("SelectIndex", {"dim": -2, "index": 0}, [(4, 3)], "layer = x0[..., 0, :]"),
        ("Mean", {"dim": [1, 2], "keepdim": True}, [(4, 3)], "layer = x0.mean((1, 2), keepdim=True)"),
        ("Scale", {"factor": 0.5}, [(4,)], "layer = x0 * 0.5"),
    ]
    for type_name, params, shapes, line in lines:
        source = exported_matches_compiled(analyse(type_name, params, shapes))
        assert f"        {line}\n" in source, source


def test_symbolic_length_flows_through():
    analysis = check_layer("Concat", {}, [("T", 16), ("T", 16)], sizes={"T": 5})
    assert analysis.ports[("layer", "output")].shape == ("N", "T*2", 16)
    analysis = check_layer("Concat", {"dim": -1}, [("T", 16), ("T", 8)], sizes={"T": 5})
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 24)
    analysis = check_layer("MatMul", {}, [("T", 16), (16, "T")], sizes={"T": 5})
    assert analysis.ports[("layer", "output")].shape == ("N", "T", "T")
    assert analysis.flops["layer"] is None
    analysis = check_layer("Add", {}, [("T", 16), (1, 16)], sizes={"T": 3})
    assert analysis.ports[("layer", "output")].shape == ("N", "T", 16)
    analysis = check_layer("SelectIndex", {}, [("T", 16)], sizes={"T": 3})
    assert analysis.ports[("layer", "output")].shape == ("N", 16)


@pytest.mark.parametrize(("type_name", "params", "shapes", "message"), [
    ("Add", {}, [(3, 4), (5, 4)],
     "Add 'layer' cannot broadcast [N, 3, 4] with [N, 5, 4]: sizes 3 and 5 differ at dim -2 "
     "(make the sizes equal, or 1 in one input (Reshape, Unsqueeze))"),
    ("Multiply", {}, [("T", 4), (3, 4)],
     "Multiply 'layer' cannot broadcast [N, T, 4] with [N, 3, 4]: sizes T and 3 differ at dim -2 "
     "(make the sizes equal, or 1 in one input (Reshape, Unsqueeze))"),
    ("Concat", {}, [(3, 4), (3, 5)],
     "Concat 'layer' joins along dim 1, so the other sizes must match, but [N, 3, 4] and [N, 3, 5] "
     "differ at dim 2 (make dim 2 equal, or join along dim 2)"),
    ("Concat", {}, [(3, 4), (3,)],
     "Concat 'layer' joins tensors of different ranks: [N, 3, 4] and [N, 3] "
     "(give every input the same number of dimensions (Reshape, Unsqueeze))"),
    ("Stack", {}, [(3, 4), (4, 3)],
     "Stack 'layer' needs inputs of equal shape, but gets [N, 3, 4] and [N, 4, 3] "
     "(make the shapes equal before stacking, or use Concat)"),
    ("MatMul", {}, [(3, 4), (5, 6)],
     "MatMul 'layer' cannot multiply [N, 3, 4] by [N, 5, 6]: the last size of input (4) must equal "
     "the second-to-last size of other (5) (Transpose one input, or change its size)"),
    ("Split", {"split_size_or_sections": [2, 3]}, [(6,)],
     "Split 'layer' splits dim 1 of [N, 6] into [2, 3], which add up to 5, not 6 (use sizes that add up to 6)"),
    ("Chunk", {"chunks": 4}, [(6,)],
     "Chunk 'layer' would give 3 pieces, not 4: torch.chunk cuts dim 1 of size 6 into pieces of 2 "
     "(use a size divisible by 4, or Split with explicit sizes)"),
    ("SelectIndex", {"index": 4}, [(4,)],
     "SelectIndex 'layer' picks index 4 of dim 1, which has size 4 in [N, 4] (use an index between -4 and 3)"),
    ("SelectIndex", {"index": 2}, [("T", 4)],
     "SelectIndex 'layer' picks index 2 of dim 1, whose size T is only known at run time "
     "(use 0 (the first) or -1 (the last), which always exist)"),
    ("Sum", {"dim": [1, -1]}, [(4,)],
     "Sum 'layer' names dim 1 twice in dim=[1, -1] (list each dimension once)"),
])
def test_diagnostics_say_what_is_wrong_and_the_fix(type_name, params, shapes, message):
    assert errors(type_name, params, shapes) == [f"layer: {message}"]


def test_scale_multiplies_by_its_factor_and_needs_floats():
    agree("Scale", {"factor": 0.3}, [(3, 4)], lambda x: x * 0.3)
    assert errors("Scale", {}, [(3,)], ["int64"]) == [
        "layer: Scale 'layer' needs a floating-point input but gets int64 (feed it from an Embedding "
        "or a float Input)"]


def test_dtype_diagnostics():
    assert errors("Mean", {}, [(4,)], ["int64"]) == [
        "layer: Mean 'layer' needs a floating-point input but gets int64 (use Sum, or feed it a float tensor)"]
    assert errors("MatMul", {}, [(4, 4), (4, 4)], ["float32", "float64"]) == [
        "layer: MatMul 'layer' needs inputs of one dtype but gets float32 and float64 "
        "(make both inputs the same float type)"]


def test_output_ports_follow_the_parameters():
    graph = layer_graph("Split", {"split_size_or_sections": [2, 2]}, [(4,)])
    graph["nodes"].append({"id": "extra", "type": "Output"})
    graph["edges"].append({"source": "layer.out2", "target": "extra"})
    assert [d.one_line() for d in analyze(load_graph(graph)).errors][0] == (
        "layer: Split 'layer' has no port 'out2' (connect to one of: out0, out1)")
    graph["nodes"][1]["params"] = {"split_size_or_sections": [1, 1, 2]}
    assert analyze(load_graph(graph)).ok


def test_unconnected_pieces_are_still_unpacked():
    graph = layer_graph("Chunk", {"chunks": 3}, [(6,)])
    graph["edges"] = [e for e in graph["edges"] if e["source"] != "layer.out1"]
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != "out_out1"]
    source = exported_matches_compiled(analyze(load_graph(graph)))
    assert "layer_out0, layer_out1, layer_out2 = x0.chunk(3, dim=1)" in source
    assert ruff_problems(source) == ""


@pytest.mark.parametrize("left", DTYPES)
@pytest.mark.parametrize("right", DTYPES)
def test_promotion_is_torch_result_type(left, right):
    for a_rank, b_rank in ((1, 1), (0, 1), (1, 0), (0, 0)):
        a = torch.zeros((2,) * a_rank, dtype=getattr(torch, left))
        b = torch.zeros((2,) * b_rank, dtype=getattr(torch, right))
        ours = promote(TensorType((2,) * a_rank, left), TensorType((2,) * b_rank, right))
        assert ours == str(torch.result_type(a, b)).removeprefix("torch.")


# --- property tests ---

def _shapes(draw, count, equal_rank=False):
    rank = draw(st.integers(0, 3))
    ranks = [rank] * count if equal_rank else draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    return [tuple(draw(st.lists(SIZES, min_size=r, max_size=r))) for r in ranks]


@EXAMPLES
@given(st.data())
def test_add_and_multiply_agree_with_torch(data):
    count = data.draw(st.integers(2, 3))
    base = data.draw(st.lists(SIZES, min_size=0, max_size=3))
    shapes = [tuple(1 if data.draw(st.booleans()) else s for s in base) for _ in range(count)]
    if data.draw(st.booleans()):
        shapes[-1] = tuple(data.draw(st.lists(SIZES, min_size=len(base), max_size=len(base))))
    dtypes = data.draw(st.lists(st.sampled_from(["float32", "float64", "int64", "bool"]),
                                min_size=count, max_size=count))
    agree("Add", {}, shapes, lambda *xs: sum(xs[1:], xs[0]), dtypes)
    agree("Multiply", {}, shapes, lambda *xs: _product(xs), dtypes)


def _product(tensors):
    result = tensors[0]
    for t in tensors[1:]:
        result = torch.mul(result, t)
    return result


@EXAMPLES
@given(st.data())
def test_concat_and_stack_agree_with_torch(data):
    count = data.draw(st.integers(2, 3))
    shapes = _shapes(data.draw, count, equal_rank=data.draw(st.booleans()))
    if data.draw(st.booleans()):
        shapes = [shapes[0]] * count
    rank = max(len(s) for s in shapes) + 1
    dim = data.draw(st.integers(-rank - 1, rank))
    dtypes = data.draw(st.lists(st.sampled_from(["float32", "float16", "int64"]), min_size=count, max_size=count))
    agree("Concat", {"dim": dim}, shapes, lambda *xs: torch.cat(xs, dim), dtypes)
    agree("Stack", {"dim": dim}, shapes, lambda *xs: torch.stack(xs, dim), dtypes)


@EXAMPLES
@given(st.data())
def test_matmul_agrees_with_torch(data):
    a = tuple(data.draw(st.lists(st.sampled_from([1, 3, 4]), min_size=0, max_size=3)))
    b = tuple(data.draw(st.lists(st.sampled_from([1, 3, 4]), min_size=0, max_size=3)))
    if data.draw(st.booleans()) and a and len(b) >= 2:
        b = (*b[:-2], a[-1], b[-1])
    agree("MatMul", {}, [a, b], torch.matmul)


@EXAMPLES
@given(st.data())
def test_pieces_and_selection_agree_with_torch(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=3)))
    rank = len(shape) + 1
    dim = data.draw(st.integers(-rank, rank - 1).filter(lambda d: d not in (0, -rank)))
    sections = data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    size = shape[dim % rank - 1]
    if size > 1 and data.draw(st.booleans()):
        cuts = [0, *sorted(data.draw(st.sets(st.integers(1, size - 1), min_size=1))), size]
        sections = [b - a for a, b in zip(cuts, cuts[1:], strict=False)]
    agree("Split", {"split_size_or_sections": sections, "dim": dim}, [shape],
          lambda x: tuple(torch.split(x, sections, dim)))
    chunks = data.draw(st.integers(2, 5))
    agree("Chunk", {"chunks": chunks, "dim": dim}, [shape], _chunk_or_refuse(chunks, dim))
    index = data.draw(st.integers(-8, 7))
    agree("SelectIndex", {"dim": dim, "index": index}, [shape], lambda x: torch.select(x, dim, index))


def _chunk_or_refuse(chunks, dim):
    """torch.chunk, refusing (as DL Studio does) when it gives fewer pieces than asked for."""
    def run(x):
        pieces = torch.chunk(x, chunks, dim)
        if len(pieces) != chunks:
            raise ValueError(f"{len(pieces)} pieces for {chunks} output ports")
        return pieces

    return run


@EXAMPLES
@given(st.data())
def test_reductions_agree_with_torch(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    rank = len(shape) + 1
    dims = data.draw(st.lists(st.integers(-rank - 1, rank), min_size=1, max_size=3))
    keep = data.draw(st.booleans())
    dtype = data.draw(st.sampled_from(["float32", "float64", "int64", "int32", "bool"]))
    agree("Sum", {"dim": dims, "keepdim": keep}, [shape], lambda x: torch.sum(x, dims, keep), [dtype])
    agree("Mean", {"dim": dims, "keepdim": keep}, [shape], lambda x: torch.mean(x, dims, keep), [dtype])
