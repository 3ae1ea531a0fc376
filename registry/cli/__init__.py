"""The ``autorater`` command line (Typer)."""
