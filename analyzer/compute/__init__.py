"""Computing the figures: pure functions over what :mod:`..read` yields; nothing is written or printed.

:mod:`.catalog` declares every figure; :mod:`.steps` and :mod:`.settings` make the windows;
:mod:`.integrate`, :mod:`.signals` and :mod:`.counter_spans` integrate the GPU signals over them,
partition by partition, into states that :mod:`.partial_integral` joins; :mod:`.engine` runs the
partitions (here; :mod:`efftrace.analyzer.cluster` on Dask); :mod:`.metrics` turns integrals and
step sums into arrays per window, :mod:`.figures` names them into one
:class:`~efftrace.analyzer.result.RunMetrics`; :mod:`.combine` and :mod:`.peaks` are the rules both
need; :mod:`.timeline` reduces samples for drawing, never for a figure.
"""
