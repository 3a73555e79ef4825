"""Reading traces: the only code that opens trace files. It never imports :mod:`..compute`.

:mod:`.loader` opens a run directory (:func:`~.loader.open_run`) and streams its record batches,
:mod:`.manifest` checks ``meta.json`` before anything reads it, and :mod:`.read_ahead` decodes the
next batch on a second thread while the current one is integrated.
"""
