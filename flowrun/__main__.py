"""``python -m flowrun`` runs the command line, as the ``flowrun`` command does (under its supervisor)."""

from flowrun.cli.supervisor import main

if __name__ == "__main__":  # importing the module (as tests do) runs nothing
    main()
