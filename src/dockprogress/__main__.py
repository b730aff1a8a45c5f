"""``python -m dockprogress`` is the ``dockprogress`` command."""

from dockprogress.cli.main import main

raise SystemExit(main())
