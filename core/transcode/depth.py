"""A nesting limit for the JSON schemas clients send (tool parameters, response formats).

A schema is walked recursively when it is rendered into the prompt, echoed back (Responses'
`tools`) and used to check arguments; one nested a thousand levels deep would overflow Python's
recursion limit there (or orjson's, 255 levels, in the echo). No real schema comes close to
`MAX_SCHEMA_DEPTH` levels of objects and arrays, so deeper ones are a 400 that names the field.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidRequest

MAX_SCHEMA_DEPTH = 64


def check_depth(value: Any, param: str, limit: int = MAX_SCHEMA_DEPTH) -> None:
    """Raise a 400 naming `param` when objects and arrays in `value` nest deeper than `limit`.

    Iterative, so the check itself cannot overflow the stack it protects."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InvalidRequest(
                f"'{param}' is nested deeper than {limit} levels of objects and arrays.", param=param
            )
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
