"""The command line: parses arguments, calls :mod:`flowrun.app`, renders results."""
