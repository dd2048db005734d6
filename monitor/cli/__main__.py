"""``python -m monitor.cli``: the replywatch command line."""

from monitor.cli.main import main

raise SystemExit(main())
