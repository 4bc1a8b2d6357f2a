"""One module per source kind; each is one row of :mod:`feeders.registry`."""
