"""Bring existing models onto the canvas: PyTorch modules (traced with torch.fx) and ONNX files.

Importers map each operation to a catalogue layer, leave an ``Unsupported`` node where none
fits, and keep the weights keyed for the compiled graph. This package may use torch and
``dlstudio.core``; the UI may use it, the core never does.
"""
