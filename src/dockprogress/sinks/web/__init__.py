"""The live dashboard: event hub, Starlette server and page (``dockprogress serve``).

This package's ``__init__`` stays light (the CLI reads the defaults without loading the web
stack); the server is :mod:`dockprogress.sinks.web.server`.
"""

from typing import Final

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT"]

#: The dashboard binds to loopback unless told otherwise (any other address needs a token).
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8765
