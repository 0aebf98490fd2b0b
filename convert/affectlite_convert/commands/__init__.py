"""One module per `affectlite-convert` command: its parser (``add_to``) beside what it does (``run``)."""
