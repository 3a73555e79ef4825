"""Presenting one :class:`~efftrace.analyzer.result.RunMetrics`: console, files, TensorBoard, pages.

What each output shows comes from :mod:`efftrace.analyzer.compute.catalog`; the pages' timelines from
:mod:`efftrace.analyzer.compute.timeline`. Nothing here computes a figure.
"""
