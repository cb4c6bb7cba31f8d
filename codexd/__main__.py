"""``python -m codexd``: the same as the ``codexd`` command."""

from codexd.cli import main

raise SystemExit(main())
