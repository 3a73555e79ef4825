"""The trace format: the one part of the recorder the analyzer may import.

:mod:`~efftrace.recorder.format.schema` (Arrow schemas, file names, format version),
:mod:`~efftrace.recorder.format.manifest_fields` (the JSON type of every ``meta.json`` field),
:mod:`~efftrace.recorder.format.columns` (lists and numpy arrays to and from Arrow without pandas)
and :mod:`~efftrace.recorder.format.units` (units and defaults both halves share). None of them
imports anything of efftrace outside this package.
"""
