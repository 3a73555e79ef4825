"""What several test modules share: paths, running effrec, reading streams, fake NVML, trace building."""
