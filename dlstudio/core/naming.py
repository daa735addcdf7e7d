"""Names and literals for generated code: the one identifier function and checked reprs.

Every name the compiler or exporter emits comes from :meth:`Namespace.name`, and every value
from :func:`literal`, so free text from a file can never become code.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
import unicodedata
from typing import Any

#: Attributes of ``torch.nn.Module``; a submodule named like one would shadow it.
#: (tests/core/test_naming.py checks this list against torch.)
MODULE_ATTRIBUTES = frozenset("""
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
get_submodule half ipu load_state_dict modules mtia named_buffers named_children named_modules
named_parameters parameters register_backward_hook register_buffer register_forward_hook
register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
set_extra_state set_submodule share_memory smart_apply state_dict to to_empty train training
type xpu zero_grad
""".split())

#: Names the generated module itself uses.
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "math", "super"})

RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | GENERATED_NAMES
)


def identifier(text: str) -> str:
    """A legal Python identifier made from ``text`` (ASCII letters, digits, underscores)."""
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", text, flags=re.ASCII)
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned[:80]


class Namespace:
    """Hands out unique legal names that avoid keywords, builtins and ``reserved`` names."""

    def __init__(self, reserved: frozenset[str] = RESERVED) -> None:
        self._reserved = reserved
        self._taken: set[str] = set()

    def name(self, wanted: str) -> str:
        base = identifier(wanted)
        if base in self._reserved:
            base += "_"
        candidate, counter = base, 1
        while candidate in self._taken or candidate in self._reserved:
            candidate = f"{base}_{counter}"
            counter += 1
        self._taken.add(candidate)
        return candidate


def class_name(graph_name: str) -> str:
    """CamelCase class name for a graph: ``"resnet18 v2"`` -> ``Resnet18V2``."""
    words = re.findall(r"[A-Za-z0-9]+", graph_name, flags=re.ASCII)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    if name[0].isdigit():
        name = "Model" + name
    return name[:80] if name not in RESERVED else name + "Model"


def literal(value: Any) -> str:
    """``repr()`` of a checked primitive: bool, int, finite float, str, None, or tuples of them."""
    if isinstance(value, str):
        text = repr(value)
        return f'"{text[1:-1]}"' if text[0] == "'" and '"' not in value else text
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot emit non-finite number {value!r}")
        return repr(value)
    if isinstance(value, tuple | list):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"cannot emit a value of type {type(value).__name__}")


def safe_text(text: str, keep_newlines: bool = False) -> str:
    """Free text made safe for a comment or docstring: no control, format or bidi characters.

    Newlines become spaces unless ``keep_newlines``; other unprintable characters are dropped.
    """
    kept = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            kept.append(ch)
        elif ch in "\t\r\n" or unicodedata.category(ch) in ("Zl", "Zp", "Zs"):
            kept.append(" ")
        elif ch.isprintable():
            kept.append(ch)
    lines = ["".join(line).rstrip() for line in "".join(kept).split("\n")]
    return "\n".join(lines).strip()


def docstring_text(text: str) -> str:
    """Text for the inside of a triple-quoted docstring: backslashes and quotes escaped."""
    return safe_text(text, keep_newlines=True).replace("\\", "\\\\").replace('"', '\\"')
