"""Strict YAML parsing shared by every YAML reader (hardware profiles, run configs).

PyYAML's ``safe_load`` silently keeps the last of two equal keys and
raises bare ``ValueError``/``RecursionError`` for some inputs (the date
``2020-13-45``, an integer of more than 4300 digits, very deep nesting).
:func:`parse_yaml` turns every such failure into one :class:`YAMLParseError`
whose message says where (line, column) and what, so callers can prefix the
file name and raise their own error type.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["StrictLoader", "YAMLParseError", "parse_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLParseError(ValueError):
    """Text that is not valid YAML; the message starts with ``" at line L, column C: "`` when known."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reports unconvertible scalars with their line."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:  # ``<<: *anchor``: merged keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key; let the base constructor report it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _guarded(constructor: Any) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        try:
            return constructor(loader, node)
        except (ValueError, OverflowError) as exc:
            shown = str(node.value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot convert {shown!r} ({exc})", node.start_mark
            ) from None

    return construct


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
for _tag in ("int", "float", "timestamp"):
    _full_tag = f"tag:yaml.org,2002:{_tag}"
    StrictLoader.add_constructor(_full_tag, _guarded(yaml.SafeLoader.yaml_constructors[_full_tag]))


def parse_yaml(text: str) -> Any:
    """Parse ``text`` with :class:`StrictLoader`; every failure is a :class:`YAMLParseError`."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise YAMLParseError(f"{where}: {problem}") from None
    except RecursionError:
        raise YAMLParseError(": nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # belt and braces: a scalar PyYAML cannot convert
        raise YAMLParseError(f": cannot convert a value ({exc})") from None
