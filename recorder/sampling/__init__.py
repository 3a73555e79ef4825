"""What runs in effrec's own process, never in a training process: GPU sampling.

The NVML sampler thread (:mod:`.sampler`), the GPUs a command can see (:mod:`.gpus`), one host's
sampling from start to end (:mod:`.host`), the stand-alone sampling process a :class:`Recorder`
starts without effrec (:mod:`.process`) and ``effrec --status`` (:mod:`.live_status`).
"""
