"""`python -m tierroute` is the `tierroute` command."""

from tierroute.cli import main

main()
