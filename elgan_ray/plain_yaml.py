"""YAML as plain data: yaml.safe_load without anchors and aliases, for the values and files users write.

A few hundred bytes of nested aliases (a "billion laughs") stand for billions of values. They are cheap to
hold as shared references, but anything that walks or prints them (a comparison, an error message) runs out
of memory or time. No study file or `key=value` needs them, so they are refused as a YAML error. So is
nesting deeper than MAX_DEPTH: PyYAML composes nested collections recursively, and a few hundred `[` would
end in a RecursionError.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_DEPTH = 32  # nested collections; a study file needs 3 ({nuisance: {key: {loguniform: [a, b]}}})


class PlainLoader(yaml.SafeLoader):
    """yaml.SafeLoader that raises a yaml.MarkedYAMLError (with its line) at the first anchor (&a) or alias
    (*a), and at a collection nested deeper than MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, "anchors and aliases (&, *) are not allowed", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_plain(text: str) -> Any:
    """yaml.safe_load(text), refusing anchors, aliases and deep nesting (yaml.YAMLError)."""
    return load_plain_node(text)[1]


def load_plain_node(text: str) -> tuple[yaml.Node | None, Any]:
    """(the composed node, whose marks give each key's line; the data) of one plain YAML document."""
    loader = PlainLoader(text)
    try:
        node = loader.get_single_node()
        return node, (None if node is None else loader.construct_document(node))
    finally:
        loader.dispose()
