"""The Unsupported placeholder an importer leaves: always an error naming the operation and
where it came from, with or without inputs wired to it."""

from dlstudio import analyze, load_graph
from tests.core.layer_check import layer_graph


def _errors(graph: dict) -> list[str]:
    return [d.one_line() for d in analyze(load_graph(graph)).errors]


def test_an_unsupported_node_reports_its_operation_and_source_line():
    graph = layer_graph("Unsupported", {"operation": "torch.erf", "source": "model.py:12"}, [(4,)])
    assert _errors(graph) == [
        "layer: Unsupported 'layer': torch.erf (model.py:12) has no DL Studio layer (rebuild this "
        "step from catalogue layers, or change the model and import it again)"]


def test_an_unsupported_node_without_inputs_still_reports_itself():
    graph = layer_graph("Unsupported", {"operation": "torch.arange"}, [(4,)])
    graph["edges"] = [edge for edge in graph["edges"] if not edge["target"].startswith("layer")]
    assert _errors(graph) == [
        "layer: Unsupported 'layer': torch.arange has no DL Studio layer (rebuild this step from "
        "catalogue layers, or change the model and import it again)"]
