"""Many converters at once: models that call assorted layers, functions and methods import
with nothing unsupported and compute what the originals compute."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.interop import zoo
from tests.interop.roundtrip import compiled, parameter_count, run_import

ZOO = Path(zoo.__file__)


def _same(original, imported, *inputs) -> None:
    with torch.no_grad():
        expected, got = original.eval()(*inputs), imported(*inputs)
    for a, b in zip(expected if isinstance(expected, tuple) else (expected,),
                    got if isinstance(got, tuple) else (got,), strict=True):
        assert a.shape == b.shape and (a - b).abs().max().item() <= 1e-5
    assert parameter_count(imported) == parameter_count(original)


def test_image_layers_and_functions(tmp_path, capsys):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{ZOO}:Images", "--input", "x=3,16,16")
    assert code == 0, capsys.readouterr()
    torch.manual_seed(0)
    _same(zoo.Images(), compiled(graph, weights), torch.randn(2, 3, 16, 16))


def test_sequence_layers_with_an_initial_state(tmp_path, capsys):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{ZOO}:Sequences", "--input", "x=7,6",
                                      "--input", "h=2,8")
    assert code == 0, capsys.readouterr()
    torch.manual_seed(0)
    _same(zoo.Sequences(), compiled(graph, weights), torch.randn(2, 7, 6), torch.randn(2, 2, 8))
