"""The rule every fixture follows: each number (and, where asked, each text fact) names its source.

``sourced_keys`` lists the dotted keys a fixture's ``sources`` mapping must hold; ``require_sources``
raises the one-line ValueError the loaders turn into a FixtureError naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


def _leaf_keys(prefix: str, value: Any, with_text: bool) -> list[str]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float) or (with_text and isinstance(value, str)):
        return [prefix]
    if isinstance(value, tuple) and value and all(isinstance(v, int | float) for v in value):
        return [prefix]  # a pair of numbers (e.g. minimum, maximum) is one fact
    if isinstance(value, BaseModel):
        return [k for name, item in value for k in _leaf_keys(f"{prefix}.{name}", item, with_text)]
    if isinstance(value, dict):
        return [k for name, item in value.items() for k in _leaf_keys(f"{prefix}.{name}", item, with_text)]
    return []


def sourced_keys(model: BaseModel, sections: Iterable[str], text_sections: Iterable[str] = ()) -> list[str]:
    """Dotted keys of every number in ``sections`` of ``model`` (nested models and mappings included),
    and of every string too in ``text_sections``."""
    text = set(text_sections)
    return [k for s in sections for k in _leaf_keys(s, getattr(model, s), s in text)]


def require_sources(
    model: BaseModel, sources: dict[str, str], sections: Iterable[str], text_sections: Iterable[str] = ()
) -> list[str]:
    """Raise ValueError for the first key without a non-empty source; returns the keys checked."""
    keys = sourced_keys(model, sections, text_sections)
    for key in keys:
        if not sources.get(key, "").strip():
            raise ValueError(f"sources['{key}'] is missing: every number must name its source")
    return keys
