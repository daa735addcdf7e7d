"""Reading and writing graph files safely: bounded, JSON only, versioned, stable key order.

Loading never executes anything from the file. Every failure becomes one
:class:`GraphFileError` whose message names the file and the reason.
"""

from __future__ import annotations

import gc
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dlstudio.core.errors import GraphFileError, printable
from dlstudio.core.graph import FORMAT, FORMAT_VERSION, ID_RULE, Graph

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_INT_DIGITS = 30
#: Deepest nesting of lists and objects a document may have (a graph needs about 6).
MAX_DEPTH = 64
#: The most nodes and edges one file may hold, those inside blocks included (far above the
#: 64k-node graphs the benchmarks open; checked before any of them is built).
MAX_NODES = 200_000
MAX_EDGES = 400_000

#: ``MIGRATIONS[n]`` turns a version-n document (a dict) into a version n+1 document.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: dict}  # 2 only adds fields

GraphSource = str | os.PathLike[str] | dict[str, Any] | Graph


@contextmanager
def paused_gc(long_lived: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector for a short, allocation-heavy step (parsing and
    analysing thousands of small objects that form no cycles); it resumes afterwards.

    With ``long_lived`` (a document opened: what is made lives as long as it does), the objects
    join the oldest generation at once, which only the collector's rare full passes scan,
    instead of being scanned by each younger generation's pass in turn (three passes over a
    16k-node graph's million objects, a tenth of the time it takes to open)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if long_lived:
            gc.freeze()  # every tracked object to the permanent generation,
            gc.unfreeze()  # and from there to the oldest one, collectable as before
        gc.enable()


def load_graph(source: GraphSource) -> Graph:
    """Load a graph from a path, a JSON-like dict or a Graph (returned as a deep copy).

    Raises :class:`GraphFileError`, and nothing else, for anything wrong with the source.
    """
    if isinstance(source, Graph):
        return source.copy_deep()
    if isinstance(source, dict):
        with paused_gc():
            return graph_from_dict(source, "<dict>")
    if not isinstance(source, str | os.PathLike):
        raise GraphFileError(f"<{type(source).__name__}>", "expected a file path, a dict or a Graph")
    path = Path(source)
    with paused_gc(long_lived=True):  # the graph lives on (an opened document, a run's network)
        return graph_from_dict(read_json(path), str(path))


def read_json(path: Path) -> Any:
    """Read a JSON file with limits on size, numbers and nesting; no NaN or Infinity.

    At most :data:`MAX_FILE_BYTES` are ever read, so a huge or endless file (a device, a pipe)
    is refused without being loaded.
    """
    name = str(path)
    try:
        if path.is_dir():
            raise GraphFileError(name, "is a directory, not a graph file")
        problem = special_file_problem(path)
        if problem:
            raise GraphFileError(name, problem)
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise GraphFileError(name, "no such file") from None
    except PermissionError:
        raise GraphFileError(name, "permission denied") from None
    except OSError as error:
        raise GraphFileError(name, error.strerror or "cannot be read") from None
    except ValueError:  # a path with a NUL character
        raise GraphFileError(name, "is not a valid file name") from None
    if len(raw) > MAX_FILE_BYTES:
        raise GraphFileError(name, f"file is over {MAX_FILE_BYTES // 2**20} MB, the limit for graph files")
    return parse_json(raw, name)


def parse_json(raw: bytes | str, name: str = "<text>") -> Any:
    """Parse JSON text strictly (see :func:`read_json`)."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except UnicodeDecodeError:
        raise GraphFileError(name, "is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        message = error.msg.removesuffix(" at")  # "Unterminated string starting at" + position
        raise GraphFileError(name, f"not valid JSON: {message} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise GraphFileError(name, "JSON is nested too deeply") from None
    except ValueError as error:
        raise GraphFileError(name, str(error)) from None


def _refuse_constant(text: str) -> float:
    raise ValueError(f"{text} is not allowed in a graph file (use a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"number {text[:20]}... is too large")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key '{key[:40]}' appears twice in one object")
            seen.add(key)
    return result


def graph_from_dict(data: Any, name: str = "<dict>") -> Graph:
    """Check the format and version, migrate old versions, and validate the document."""
    if not isinstance(data, dict):
        raise GraphFileError(name, "expected a JSON object with 'format': 'dlstudio.graph'")
    if data.get("format") != FORMAT:
        raise GraphFileError(name, f"not a DL Studio graph (missing \"format\": \"{FORMAT}\")")
    data = migrate(data, name)
    check_counts(data, name)
    for key, value in data.items():
        if key not in ("nodes", "edges") and type(value) in (list, dict):
            check_depth(value, name, where=f"'{printable(key, 40)}'")
    try:
        graph = Graph.model_validate(data)
    except ValidationError as error:
        raise GraphFileError(name, describe_validation_error(error)) from None
    except RecursionError:
        raise GraphFileError(name, "document is nested too deeply") from None
    check_free_values(graph, name)
    return graph


def check_counts(data: dict[str, Any], name: str) -> None:
    """Refuse more than :data:`MAX_NODES` nodes or :data:`MAX_EDGES` edges, counting the
    graph's own and every block's, before anything is built from them."""
    blocks = data.get("blocks")
    parts = [data, *(b for b in blocks.values() if isinstance(b, dict))] if isinstance(blocks, dict) else [data]
    for key, limit, constant in (("nodes", MAX_NODES, "MAX_NODES"), ("edges", MAX_EDGES, "MAX_EDGES")):
        count = sum(len(part[key]) for part in parts if isinstance(part.get(key), list))
        if count > limit:
            raise GraphFileError(name, f"has {count:,} {key}, more than the {limit:,} a graph file may hold "
                                       f"({constant}; split it into smaller graphs)")


def check_free_values(graph: Graph, name: str) -> None:
    """Refuse deep nesting in the nodes' and edges' untyped parts: params and unknown keys
    (the rest of the document, the training section included, is checked before validation)."""
    for node in graph.nodes:
        nested = [v for v in node.params.values() if type(v) in (list, dict)]
        if nested or node.__pydantic_extra__:
            check_depth([nested, node.__pydantic_extra__], name, where=f"node '{node.id}'")
    check_depth([edge.model_extra for edge in graph.edges if edge.model_extra], name, where="'edges'")


def check_depth(data: Any, name: str, limit: int = MAX_DEPTH, where: str = "document") -> None:
    """Refuse values nested deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise GraphFileError(name, f"{where} is nested more than {limit} levels deep (MAX_DEPTH)")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def migrate(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Bring a document up to :data:`FORMAT_VERSION` one step at a time."""
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GraphFileError(name, "'version' must be a positive whole number")
    if version > FORMAT_VERSION:
        raise GraphFileError(
            name,
            f"graph format version {version} requires DL Studio >= {required_app_version(version)} "
            f"(this one reads up to version {FORMAT_VERSION})",
        )
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise GraphFileError(name, f"graph format version {version} is no longer supported")
        try:
            data = step(dict(data))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise GraphFileError(name, f"cannot upgrade it from version {version}: {error}") from None
        version += 1
        data["version"] = version
    return data


def required_app_version(format_version: int) -> str:
    """The first DL Studio release that reads ``format_version`` (version N arrives in 0.N)."""
    return f"0.{format_version}"


def describe_validation_error(error: ValidationError) -> str:
    """One line from a pydantic error: where in the document, and what is wrong."""
    first = error.errors(include_url=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["loc"][-1:] == ("id",) and first["type"] in ("string_pattern_mismatch", "string_too_long"):
        message = f"node id {str(first['input'])[:40]!r} is not a legal identifier ({ID_RULE})"
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where or 'document'}: {message}{more}"


def graph_to_json(graph: Graph) -> str:
    """Serialise with a stable key order, one node and one edge per line, ASCII only."""
    doc = graph_to_dict(graph)
    lines = ["{"]
    items = list(doc.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if key in ("nodes", "edges") and value:
            lines.append(f'  "{key}": ' + _rows(value, 1) + comma)
        elif key == "blocks" and value:
            lines.append('  "blocks": ' + _blocks_text(value) + comma)
        else:
            body = json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False)
            lines.append(f"  {json.dumps(key)}: " + body.replace("\n", "\n  ") + comma)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _rows(items: list[Any], depth: int) -> str:
    """A JSON list with one compact item per line, indented for ``depth``."""
    pad = "  " * depth
    return "[\n" + ",\n".join(f"{pad}  {_compact(item)}" for item in items) + f"\n{pad}]"


def _blocks_text(blocks: dict[str, Any]) -> str:
    """The blocks section: each block's nodes and edges one per line, as at the top level."""
    entries = []
    for name, block in blocks.items():
        fields = []
        for key, value in block.items():
            if key in ("nodes", "edges") and value:
                text = _rows(value, 3)
            else:
                text = _compact(value)
            fields.append(f"      {json.dumps(key)}: {text}")
        entries.append(f"    {json.dumps(name)}: {{\n" + ",\n".join(fields) + "\n    }")
    return "{\n" + ",\n".join(entries) + "\n  }"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(", ", ": "))


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """The document as plain JSON values, keys in the order the file writes them."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": graph.needed_version,
        "name": graph.name,
        "description": graph.description,
    }
    for field_name in type(graph).model_fields:
        if field_name not in doc and field_name not in ("nodes", "edges", "blocks"):
            value = getattr(graph, field_name)
            if value is not None:
                doc[field_name] = _plain(value)
    if graph.blocks is not None:
        doc["blocks"] = {name: _block_dict(block) for name, block in graph.blocks.items()}
    doc["nodes"] = [_node_dict(node) for node in graph.nodes]
    doc["edges"] = [{"source": e.source, "target": e.target, **_sorted(e.model_extra)} for e in graph.edges]
    doc.update(_sorted(graph.model_extra))
    return doc


def _block_dict(block: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if block.description:
        out["description"] = block.description
    out["params"] = {key: _plain(value) for key, value in block.params.items()}
    out["nodes"] = [_node_dict(node) for node in block.nodes]
    out["edges"] = [{"source": e.source, "target": e.target, **_sorted(e.model_extra)} for e in block.edges]
    out.update(_sorted(block.model_extra))
    return out


def _node_dict(node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node.id, "type": node.type}
    if node.params:
        out["params"] = {key: _plain(node.params[key]) for key in sorted(node.params)}
    if node.label is not None:
        out["label"] = node.label
    if node.position is not None:
        out["position"] = [_number(v) for v in node.position]
    if node.frozen:
        out["frozen"] = True
    if node.tie:
        out["tie"] = dict(node.tie)
    out.update(_sorted(node.model_extra))
    return out


def _sorted(extra: dict[str, Any] | None) -> dict[str, Any]:
    return {key: _plain(extra[key]) for key in sorted(extra or {})}


def _plain(value: Any) -> Any:
    """JSON values; free-form objects get sorted keys (typed sections keep their field order)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(value[k]) for k in sorted(value)}
    return value


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def save_graph(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over."""
    write_atomic(Path(path), graph_to_json(graph).encode("ascii"))


def special_file_problem(path: Path) -> str | None:
    """Why ``path`` must not be opened for reading: a pipe, a device or a socket would block
    or never end. None for a regular file (through links) or one that does not exist."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None  # the open that follows reports it
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = "a named pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(
        mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    return f"is {kind}, not a regular file"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    A symbolic link is followed: its target is replaced, the link stays. The file keeps its
    permissions, or a new one gets those the umask gives (not the temporary file's 0600).
    """
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permission bits a replacement of ``path`` gets: its own, else 0666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system tells (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current
