"""``python -m bench``: run the codexd benchmark."""

from bench.run import main

raise SystemExit(main())
