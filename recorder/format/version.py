"""The efftrace release, defined once: the package's version, and ``recorder_version`` in ``meta.json``."""

__version__ = "0.1.0"
