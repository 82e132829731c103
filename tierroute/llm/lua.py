"""The Redis scripts of the limiter and the cache gate, kept as .lua files beside this module."""

from __future__ import annotations

from importlib import resources


def lua(name: str) -> str:
    """The text of the script `name` (e.g. "ratelimit.lua")."""
    return resources.files("tierroute.llm").joinpath(name).read_text()
