"""`python -m qa.cli`: the `qa` command (as scripts run it, with this interpreter)."""

from qa.cli import main

main()
