"""pytest suite for the ``mirage`` Python package (a package so helpers import as ``tests.*``)."""
