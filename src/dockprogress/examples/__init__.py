"""Shipped examples: milestone files and the scripts that make their services run."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["example_path", "example_text"]


def example_path(name: str) -> Path:
    """The path of a shipped example file (e.g. ``postgres-load.toml``)."""
    return Path(str(resources.files(__package__).joinpath(name)))


def example_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
