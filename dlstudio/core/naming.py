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

from dlstudio.core.pyformat import constant_text

#: Public attributes of ``torch.nn.Module``; a submodule named like one would shadow it.
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

#: Private attributes and methods of ``torch.nn.Module`` (checked against torch as well):
#: a submodule called ``_modules`` would break the module itself.
MODULE_PRIVATE = frozenset("""
_apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
_forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
_forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks
_load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules _named_members
_non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
_register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward
_state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
""".split())

#: Names the generated module itself uses.
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "math", "super"})

#: Names a local variable (or a class) must avoid.
RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | GENERATED_NAMES
)

#: Names a submodule attribute (``self.<name>``) must avoid; builtins are fine there.
ATTRIBUTE_RESERVED = frozenset(keyword.kwlist) | MODULE_ATTRIBUTES | MODULE_PRIVATE


def identifier(text: str) -> str:
    """A legal Python identifier made from ``text`` (ASCII letters, digits, underscores).

    A leading double underscore gets an ``n`` in front, since Python would mangle
    ``self.__x`` inside a class body.
    """
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", text, flags=re.ASCII)
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    if cleaned.startswith("__"):
        cleaned = "n" + cleaned
    return cleaned[:80]


class Namespace:
    """Hands out unique legal names that avoid keywords, builtins and ``reserved`` names."""

    def __init__(self, reserved: frozenset[str] = RESERVED) -> None:
        self._reserved = reserved
        self._taken: set[str] = set()

    def name(self, wanted: str) -> str:
        base = identifier(wanted)
        if base in self._reserved:
            base = identifier(base + "_")
        candidate, counter = base, 1
        while candidate in self._taken or candidate in self._reserved:
            candidate = f"{base}_{counter}"
            counter += 1
        self._taken.add(candidate)
        return candidate

    def reserve(self, name: str) -> None:
        """Mark ``name`` as used, so later requests get another one."""
        self._taken.add(name)


def class_name(graph_name: str, taken: frozenset[str] = frozenset()) -> str:
    """CamelCase class name for a graph: ``"resnet18 v2"`` -> ``Resnet18V2``.

    Avoids reserved names and ``taken`` ones (the helper classes the file defines).
    """
    words = re.findall(r"[A-Za-z0-9]+", graph_name, flags=re.ASCII)
    name = "".join(w[:1].upper() + w[1:] for w in words)[:60] or "Model"
    if name[0].isdigit():
        name = "Model" + name
    return name + "Model" if name in RESERVED or name in taken else name


def literal(value: Any) -> str:
    """Source text of a checked primitive (bool, int, finite float, str, None, tuples of them).

    Written as ruff formats it (double quotes, ``1e16``), so exported files are formatted.
    """
    if value is None or isinstance(value, bool | int | str):
        return constant_text(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot emit non-finite number {value!r}")
        return constant_text(value)
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
    """Text for the inside of a triple-quoted docstring: backslashes and quotes escaped.

    Lines after the first lose their common indentation, as ruff format would do.
    """
    first, *rest = safe_text(text, keep_newlines=True).split("\n")
    margin = min((len(line) - len(line.lstrip(" ")) for line in rest if line), default=0)
    body = "\n".join([first, *(line[margin:] for line in rest)])
    return body.replace("\\", "\\\\").replace('"', '\\"')
