"""Parameter validation: a pydantic model per layer type, built from its :class:`Param` list."""

from __future__ import annotations

import math
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from dlstudio.core.spec import LayerSpec, Param

#: A bound that keeps every count representable and allocations refusable before torch runs.
HUGE = 2**31 - 1


class ParamProblem(Exception):
    """One bad parameter value, named and explained."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def _bounded(base: Any, p: Param) -> Any:
    lo = p.min if p.min is not None else -HUGE
    hi = p.max if p.max is not None else HUGE
    if base is StrictInt:  # an int accepted for a float parameter: whole-number bounds
        lo, hi = math.ceil(lo), math.floor(hi)
    return Annotated[base, Field(ge=lo, le=hi)]


def _annotation(p: Param) -> Any:
    if p.kind == "int":
        ann: Any = _bounded(StrictInt, p)
    elif p.kind == "float":
        ann = _bounded(StrictFloat, p) | _bounded(StrictInt, p)
    elif p.kind == "bool":
        ann = StrictBool
    elif p.kind == "str":
        ann = Annotated[StrictStr, Field(max_length=200)]
    elif p.kind == "choice":
        ann = Literal[p.choices]  # type: ignore[valid-type]
    elif p.kind == "shape":
        item = _bounded(StrictInt, Param("", "int", min=-1)) | Annotated[
            StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
        ]
        ann = Annotated[list[item], Field(max_length=16)]  # type: ignore[valid-type]
    else:  # ints
        item = _bounded(StrictInt, p)
        entry = item | None if p.none_items else item
        sized = Field(min_length=p.length, max_length=p.length) if p.length else Field(max_length=16)
        ann = Annotated[list[entry], sized]  # type: ignore[valid-type]
        if p.scalar_ok:
            ann = ann | item
        if p.choices:
            ann = ann | Literal[p.choices]  # type: ignore[valid-type]
    if p.expression_ok:
        ann = ann | Annotated[StrictStr, Field(pattern=r"^\$", max_length=201)]
    return ann | None if p.nullable else ann


@cache
def params_model(spec: LayerSpec) -> type[BaseModel]:
    """The pydantic model that checks a node's ``params`` for ``spec`` (unknown keys refused)."""
    fields = {p.name: (_annotation(p), p.default) for p in spec.params}
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{spec.type}Params", __config__=ConfigDict(extra="forbid"), **fields
    )


def resolve_params(spec: LayerSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Validate ``given`` and return every parameter with defaults filled, lists as tuples.

    Raises :class:`ParamProblem` naming the first bad parameter.
    """
    try:
        model = params_model(spec).model_validate(given)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        name = str(first["loc"][0]) if first["loc"] else None
        raise ParamProblem(name, _describe(spec, name, first, given)) from None
    return {name: _freeze(value) for name, value in model.__dict__.items()}


def _describe(spec: LayerSpec, name: str | None, error: Any, given: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        known = ", ".join(p.name for p in spec.params) or "none"
        return f"unknown parameter '{name}' (parameters of {spec.type}: {known})"
    value = given.get(name) if name else None
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    param = spec.param(name) if name and name in spec.defaults else None
    return f"{name}={shown} is not valid: {_expected(param) if param else error['msg']}"


def _expected(p: Param) -> str:
    span = ""
    if p.min is not None or p.max is not None:
        lo = "" if p.min is None else f"{p.min:g} <= "
        hi = "" if p.max is None else f" <= {p.max:g}"
        span = f" ({lo}value{hi})"
    if p.kind == "choice":
        return "choose one of " + ", ".join(repr(c) for c in p.choices)
    if p.kind == "ints":
        count = f"{p.length} " if p.length else ""
        items = "whole numbers or nulls" if p.none_items else "whole numbers"
        options = ["a list of " + count + items]
        if p.scalar_ok:
            options.insert(0, "a whole number")
        options += [repr(c) for c in p.choices]
        return "expected " + " or ".join(options) + span
    kinds = {"int": "a whole number", "float": "a number", "bool": "true or false",
             "str": "text", "shape": "a list of sizes"}
    return f"expected {kinds[p.kind]}{span}"


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def output_ports_of(spec: LayerSpec, given: dict[str, Any]) -> tuple[str, ...]:
    """The output ports a node of ``spec`` has with the parameters the user ``given``
    (Split/Chunk follow their parameters); the declared ports while the parameters are bad."""
    if spec.output_rule is None:
        return spec.outputs
    try:
        return spec.output_ports(resolve_params(spec, given))
    except ParamProblem:
        return spec.outputs
