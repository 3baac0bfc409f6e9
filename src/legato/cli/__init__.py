"""The ``legato`` command line."""
