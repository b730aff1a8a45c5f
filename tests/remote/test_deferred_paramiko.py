"""docker-py's paramiko is imported only when an ssh engine needs it (dockprogress.docker).

Each check runs in a fresh interpreter, so what is imported is what a command imports.
The ssh engines themselves are tested in test_remote_engines.py (a real sshd of the bed).
"""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_the_adapters_import_docker_py_without_executing_paramiko() -> None:
    out = _run(
        "import sys, dockprogress.docker.push, dockprogress.docker.pull, docker\n"
        "print(sorted(m for m in sys.modules if m.startswith(('paramiko.', 'invoke'))))\n"
        "print(type(sys.modules['paramiko']).__name__)"
    )
    assert out.splitlines() == ["[]", "_Deferred"]


def test_the_first_use_imports_the_real_paramiko_for_everyone() -> None:
    out = _run(
        "import sys, importlib.util, dockprogress.docker.client\n"
        "from docker.transport import sshconn\n"
        "print(importlib.util.find_spec('paramiko') is not None)\n"  # _require_paramiko's test
        "policy = sshconn.paramiko.RejectPolicy\n"  # what docker-py does for an ssh engine
        "import paramiko, paramiko.client\n"
        "print(policy is paramiko.client.RejectPolicy is paramiko.RejectPolicy)\n"
        "print(type(sys.modules['paramiko']).__name__, 'paramiko.transport' in sys.modules)"
    )
    assert out.splitlines() == ["True", "True", "module True"]
