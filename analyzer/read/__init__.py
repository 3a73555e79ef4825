"""Reading traces: the only code that opens trace files. It never imports :mod:`..compute`.

:mod:`.loader` opens a run directory (:func:`~.loader.open_run`) and streams its record batches,
:mod:`.locations` says where its files are (a local directory or a URL), :mod:`.partitions` cuts
its sample files into the byte ranges the analysis works on, :mod:`.manifest` checks ``meta.json``
before anything reads it, :mod:`.tail` reads a run still being written, and :mod:`.read_ahead`
decodes the next batch on a second thread while the current one is integrated.
"""
