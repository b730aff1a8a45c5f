"""MkDocs hook (mkdocs.yml ``hooks:``): Sphinx roles in docstrings read as plain code.

The docstrings cross-reference in Sphinx's style (``:class:`~dockprogress.events.TaskEvent```),
which mkdocstrings renders as Markdown: the role word stays in front of the code. This drops
the role and, for a ``~`` reference, everything but the last dotted name, as Sphinx shows it.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    name = match[2].rsplit(".", 1)[-1] if match[1] else match[2]
    return f"<code>{name}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_plain, html)
