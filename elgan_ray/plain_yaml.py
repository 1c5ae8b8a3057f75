"""YAML as plain data: yaml.safe_load without anchors and aliases, for the values and files users write.

A few hundred bytes of nested aliases (a "billion laughs") stand for billions of values. They are cheap to
hold as shared references, but anything that walks or prints them (a comparison, an error message) runs out
of memory or time. No study file or `key=value` needs them, so they are refused as a YAML error.
"""

from __future__ import annotations

from typing import Any

import yaml


class PlainLoader(yaml.SafeLoader):
    """yaml.SafeLoader that raises yaml.YAMLError at the first anchor (&a) or alias (*a)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError("anchors and aliases (&, *) are not allowed")
        return super().compose_node(parent, index)


def load_plain(text: str) -> Any:
    """yaml.safe_load(text), refusing anchors and aliases (yaml.YAMLError)."""
    return yaml.load(text, Loader=PlainLoader)
