"""``python -m flowrun`` runs the command line."""

from flowrun.cli.main import main

if __name__ == "__main__":  # importing the module (as tests do) runs nothing
    main()
