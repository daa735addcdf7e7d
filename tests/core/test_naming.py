"""Every emitted name comes from one identifier function: legal, unique, never shadowing."""

from __future__ import annotations

import keyword
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dlstudio.core.naming import (
    ATTRIBUTE_RESERVED,
    MODULE_ATTRIBUTES,
    MODULE_PRIVATE,
    RESERVED,
    Namespace,
    class_name,
    docstring_text,
    identifier,
    literal,
    safe_text,
)


def _module_names() -> set[str]:
    return set(dir(nn.Module)) | set(vars(nn.Module()))


def test_module_attributes_cover_every_public_attribute_of_nn_module():
    public = {name for name in _module_names() if not name.startswith("_")}
    assert public <= MODULE_ATTRIBUTES, sorted(public - MODULE_ATTRIBUTES)


def test_private_attributes_of_nn_module_are_reserved_too():
    private = {name for name in _module_names() if name.startswith("_") and not name.startswith("__")}
    assert private <= MODULE_PRIVATE, sorted(private - MODULE_PRIVATE)


@pytest.mark.parametrize("name", sorted(MODULE_ATTRIBUTES | MODULE_PRIVATE | set(keyword.kwlist)))
def test_an_attribute_never_takes_a_reserved_name(name):
    made = Namespace(ATTRIBUTE_RESERVED).name(name)
    assert made != name and made not in ATTRIBUTE_RESERVED and made.isidentifier()


@pytest.mark.parametrize("name", ["__x", "__init__", "__dict__", "__"])
def test_no_name_starts_with_a_double_underscore(name):
    """``self.__x`` would be name-mangled inside the exported class body."""
    assert not Namespace(ATTRIBUTE_RESERVED).name(name).startswith("__")
    assert not Namespace().name(name).startswith("__")


@pytest.mark.parametrize("name", ["input", "sum", "max", "type_", "match", "print"])
def test_attributes_may_be_builtin_names_so_state_dict_keys_stay_the_node_ids(name):
    assert Namespace(ATTRIBUTE_RESERVED).name(name) == name


@pytest.mark.parametrize("name", ["self", "torch", "nn", "F", "math", "super", "input", "class", "match"])
def test_variables_avoid_builtins_keywords_and_the_generated_names(name):
    made = Namespace().name(name)
    assert made != name and made.isidentifier() and not keyword.iskeyword(made)


@given(st.lists(st.text(max_size=90), max_size=30))
def test_names_are_unique_legal_ascii_identifiers(wanted):
    space = Namespace()
    made = [space.name(text) for text in wanted]
    assert len(set(made)) == len(made)
    for name in made:
        assert name.isascii() and name.isidentifier()
        assert not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
        assert name not in RESERVED and not name.startswith("__")


@given(st.text(max_size=100))
def test_identifier_is_legal_for_any_text(text):
    name = identifier(text)
    assert name.isascii() and name.isidentifier() and len(name) <= 80


@given(st.text(max_size=300))
def test_class_names_are_legal_camel_case_and_short(text):
    name = class_name(text)
    assert name.isascii() and name.isidentifier() and name not in RESERVED
    assert name[0].isupper() and len(name) <= 65


@pytest.mark.parametrize(("graph_name", "expected"), [
    ("resnet18 v2", "Resnet18V2"), ("", "Model"), ("123", "Model123"), ("f", "FModel"),
    ("none", "NoneModel"), ("東京", "Model"), ("tiny mlp", "TinyMlp"),
])
def test_class_name_examples(graph_name, expected):
    assert class_name(graph_name) == expected


def test_class_name_avoids_the_helper_classes_of_the_file():
    assert class_name("positional encoding", frozenset({"PositionalEncoding"})) == "PositionalEncodingModel"


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=10))
def test_literals_evaluate_back_to_the_value(value):
    import ast

    text = literal(value)
    assert ast.literal_eval(text) == value or (isinstance(value, float) and math.isclose(
        ast.literal_eval(text), value))


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, object(), {"a": 1}, b"x"])
def test_literal_refuses_anything_but_checked_primitives(value):
    with pytest.raises((TypeError, ValueError)):
        literal(value)


@given(st.text(max_size=200))
def test_safe_text_has_no_control_format_or_bidi_characters(text):
    import unicodedata

    for keep in (False, True):
        cleaned = safe_text(text, keep_newlines=keep)
        assert all(ch.isprintable() or (keep and ch == "\n") for ch in cleaned)
        assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                       for ch in cleaned if ch != "\n")
        assert keep or "\n" not in cleaned


@given(st.text(max_size=200))
def test_docstring_text_cannot_close_the_docstring(text):
    import ast

    body = docstring_text(text)
    module = ast.parse(f'"""{body}"""')
    assert len(module.body) == 1
    value = module.body[0].value.value  # type: ignore[attr-defined]
    assert value.replace(" ", "").replace("\n", "") == safe_text(text, True).replace(" ", "").replace("\n", "")
