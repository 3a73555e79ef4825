"""What runs inside the training processes: it must stay light and must never raise into training.

The Trainer callback and the patches ``effrec`` applies on import (:mod:`.hf_callback`,
:mod:`.hf_instrument`, :mod:`._autoinstrument`), the torch probes (:mod:`.torch_probe`,
:mod:`.gpu_clock`), each process's events file (:mod:`.events`) and the public :class:`Recorder`
API (:mod:`.api`). Nothing here imports :mod:`efftrace.recorder.sampling` (a test checks it):
GPU sampling always runs in a process of its own.
"""
