"""``python -m flowrun`` runs the command line."""

from flowrun.cli.main import main

main()
