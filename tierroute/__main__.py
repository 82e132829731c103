"""`python -m tierroute` is the `tierroute` command."""

from tierroute.cli.main import main

main()
