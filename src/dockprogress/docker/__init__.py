"""The Docker adapters (see each module). Importing this package defers ``paramiko``.

docker-py imports paramiko for its ssh transport whenever it is imported (about half of its
import time), though it uses it only to open an ``ssh://`` connection. Before docker-py is
imported, a stand-in module is registered under the name: docker-py's ``import paramiko``
gets it at no cost, and its first attribute access (made only when an ssh engine is
reached) imports the real paramiko and answers from it. A command on a local engine starts
that much sooner; ssh engines work as before (``find_spec`` still sees the package; a
missing paramiko is reported when an ssh engine needs it).

(:class:`importlib.util.LazyLoader` cannot do this on Python 3.11: the import system reads
the module's ``__spec__``, which makes a lazy module load at once.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

_LOCK = threading.Lock()


class _Deferred(types.ModuleType):
    """Stands for a module not imported yet; imports it on the first attribute asked."""

    def __init__(self, spec: Any) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec  # read by the import system without loading anything
        self.__loader__ = spec.loader
        self._dp_module: types.ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:  # only for what the stand-in does not have
        real = self._dp_module
        if real is None:
            with _LOCK:
                real = self._dp_module
                if real is None:
                    if sys.modules.get(self.__name__) is self:
                        del sys.modules[self.__name__]
                    real = importlib.import_module(self.__name__)
                    self._dp_module = real
        return getattr(real, attr)


def _defer(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is not None:
        sys.modules[name] = _Deferred(spec)


_defer("paramiko")
