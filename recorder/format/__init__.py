"""The trace format, and what both halves share: the one part of the recorder the analyzer may import.

- :mod:`~efftrace.recorder.format.schema`: Arrow schemas, file names, format version;
- :mod:`~efftrace.recorder.format.manifest_fields`: the JSON type of every ``meta.json`` field;
- :mod:`~efftrace.recorder.format.columns`: lists and numpy arrays to and from Arrow without pandas;
- :mod:`~efftrace.recorder.format.json_values`: JSON with no ``NaN`` or ``Infinity``;
- :mod:`~efftrace.recorder.format.units`: units and defaults both halves share;
- :mod:`~efftrace.recorder.format.ranges`: what every value a user gives may be, and its check;
- :mod:`~efftrace.recorder.format.options`: that check as a click option type (both command lines);
- :mod:`~efftrace.recorder.format.version`: the release.

None of them imports anything of efftrace outside this package.
"""
