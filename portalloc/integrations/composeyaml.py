"""A compose file's YAML, read as docker compose reads it, with hostile input bounded before it is built.

- YAML 1.2 as compose (go-yaml v3) reads it: ``- 22:22`` is the string ``"22:22"``
  (not base 60), ``yes``/``no`` are strings, a duplicated key is an error.
- Unknown tags are ignored, ``!reset`` drops a value and ``!override`` replaces
  instead of merging (compose-spec "merge"); several documents in one file merge.
- Nesting depth and the size a file expands to through aliases (a "billion laughs"
  bomb) are counted on the event stream, which PyYAML produces without recursion,
  so neither can reach memory or the recursion limit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from portalloc.core.limits import MAX_COMPOSE_BYTES
from portalloc.errors import ComposeFileError
from portalloc.storage.files import read_regular_file

#: Deeper YAML than this is refused before it is built (real compose files nest < 10).
MAX_DEPTH = 64
#: The most YAML nodes a file may expand to, aliases counted at their full size.
MAX_NODES = 200_000
#: Quoted input in a message is cut to this many characters.
QUOTE_LIMIT = 60


def quote(value: object) -> str:
    """``repr(value)`` cut to ``QUOTE_LIMIT`` characters, so a hostile file cannot make a huge message."""
    text = repr(value) if not isinstance(value, (dict, list)) else _short_repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1] + "…"


def _short_repr(value: dict[Any, Any] | list[Any]) -> str:
    items = list(value.items()) if isinstance(value, dict) else [(None, item) for item in value]
    if len(items) <= 8 and not any(isinstance(item, (dict, list)) for _, item in items):
        return repr(value)  # small and flat: as written
    # repr() of an aliased structure is as big as its expansion: describe it instead.
    return f"<a mapping of {len(value)} keys>" if isinstance(value, dict) else f"<a list of {len(value)} items>"


class OverrideList(list[Any]):
    """A list tagged ``!override``: it replaces the inherited list instead of adding to it."""


class OverrideMap(dict[Any, Any]):
    """A mapping tagged ``!override``."""


class _Reset:
    """A value tagged ``!reset``: the key is dropped (compose-spec "merge")."""


RESET = _Reset()


def _base() -> type[Any]:
    """libyaml's parser when PyYAML has it (about 10 times faster on a 4 MiB file), else PyYAML's own."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _loader(problems: list[str]) -> type[Any]:
    """A loader class for compose's YAML (``_read_as_yaml_12``, tags); duplicate keys go to ``problems``."""
    import yaml

    class ComposeLoader(_base()):  # type: ignore[misc]
        """SafeLoader read as YAML 1.2 (no base 60, no yes/no booleans), duplicate keys reported."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<" merge keys are flattened by SafeLoader, not assigned
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        problems.append(
                            f"line {key_node.start_mark.line + 1}: mapping key {quote(key)} "
                            f"already defined at line {seen[key]}"
                        )
                    seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    problems.append(f"line {key_node.start_mark.line + 1}: a mapping key that is not a scalar")
                    return {}
            return dict(super().construct_mapping(node, deep=deep))

        def construct_yaml_int(self, node: Any) -> int:
            try:
                return int(super().construct_yaml_int(node))
            except ValueError:  # int() refuses more than 4,300 digits: a YAML error, with its place
                raise yaml.constructor.ConstructorError(
                    None, None, f"the number {quote(node.value)} is too long", node.start_mark
                ) from None

    _read_as_yaml_12(ComposeLoader)
    ComposeLoader.add_constructor("tag:yaml.org,2002:int", ComposeLoader.construct_yaml_int)
    ComposeLoader.add_multi_constructor("!", _tagged)
    return ComposeLoader


def _read_as_yaml_12(loader: type[Any]) -> None:
    """Give ``loader`` YAML 1.2's implicit types as go-yaml v3 reads them: no yes/no booleans, no base 60."""
    import yaml

    resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for key, entries in resolvers.items():
        resolvers[key] = [
            (tag, regexp)
            for tag, regexp in entries
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")
        ]
    loader.yaml_implicit_resolvers = resolvers
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o?[0-7_]+)$"),
        list("-+0123456789"),
    )
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$"),
        list("-+0123456789."),
    )


def _tagged(loader: Any, suffix: str, node: Any) -> Any:
    """A tagged value: ``!reset`` drops it, ``!override`` marks it, any other tag is ignored (as compose does)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    if suffix == "reset":
        return RESET
    if suffix == "override":
        return (
            OverrideList(value) if isinstance(value, list) else OverrideMap(value) if isinstance(value, dict) else value
        )
    return value  # any other tag: compose ignores it


def _bound(text: str, path: Path) -> None:
    """Refuse YAML nested deeper than ``MAX_DEPTH``, expanding past ``MAX_NODES`` nodes, or containing itself."""
    import yaml

    sizes: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = [(None, 0)]
    total = 0
    for event in yaml.parse(text, Loader=_base()):
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in stack):
                # PyYAML would build a list or mapping that contains itself, which no
                # recursive walk can finish; docker compose refuses it as well.
                raise ComposeFileError(
                    f"{path} has the alias *{event.anchor} inside its own anchor &{event.anchor} "
                    "(a value that contains itself); refusing to read it"
                )
            size = sizes.get(event.anchor or "", 1)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append((event.anchor, 1))
            if len(stack) - 1 > MAX_DEPTH:  # the first entry is the stream, not a level
                raise ComposeFileError(f"{path} nests deeper than {MAX_DEPTH} levels; refusing to read it")
            continue
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        else:
            continue
        anchor, count = stack[-1]
        stack[-1] = (anchor, count + size)
        total += size if isinstance(event, yaml.AliasEvent) else 1
        if total > MAX_NODES:
            raise ComposeFileError(
                f"{path} expands to more than {MAX_NODES:,} values (a YAML alias bomb?); refusing to read it"
            )


def load_documents(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The compose file at ``path`` as one mapping (documents merged), and the duplicate keys compose rejects."""
    import yaml

    try:
        data = read_regular_file(path, "compose file", MAX_COMPOSE_BYTES).data
    except OSError as error:
        raise ComposeFileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ComposeFileError(f"{path} is not UTF-8 (byte {error.start + 1})") from None
    problems: list[str] = []
    try:
        _bound(text, path)
        documents = list(yaml.load_all(text, Loader=_loader(problems)))  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ComposeFileError(f"{path} is not valid YAML: {problem}{where}") from None
    if all(document is None for document in documents):
        raise ComposeFileError(f"{path} is empty: a compose file needs at least services or include")
    merged: dict[str, Any] = {}
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ComposeFileError(f"{path} is not a compose file: a document in it is not a mapping")
        merged = merge(merged, document)
    return merged, problems


def merge(base: Any, override: Any) -> Any:
    """``override`` laid over ``base`` as compose merges files and ``extends``: mappings deep, lists added to."""
    if override is RESET:
        return RESET
    if isinstance(override, (OverrideList, OverrideMap)):
        return list(override) if isinstance(override, list) else dict(override)
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return {key: value for key, value in out.items() if value is not RESET}
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override
