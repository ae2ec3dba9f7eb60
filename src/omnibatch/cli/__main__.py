"""``python -m omnibatch.cli``: the same as the ``omnibatch`` script."""

from omnibatch.cli import main

raise SystemExit(main())
