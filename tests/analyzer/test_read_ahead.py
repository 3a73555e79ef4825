"""Reading ahead in a thread keeps order, raises the producer's errors in the caller, leaves no thread behind."""

from __future__ import annotations

import threading

import pytest

from efftrace.analyzer.read.read_ahead import read_ahead


def _threads() -> int:
    return sum(thread.name == "efftrace-read-ahead" for thread in threading.enumerate())


def test_items_come_in_order():
    assert list(read_ahead(iter(range(1000)))) == list(range(1000))
    assert _threads() == 0


def test_an_error_while_producing_is_raised_in_the_caller():
    def failing():
        yield 1
        raise ValueError("cut-off batch")

    seen = []
    with pytest.raises(ValueError, match="cut-off batch"):
        for item in read_ahead(failing()):
            seen.append(item)
    assert seen == [1]
    assert _threads() == 0


def test_stopping_early_stops_the_producer():
    produced = []

    def endless():
        number = 0
        while True:
            produced.append(number)
            yield number
            number += 1

    items = read_ahead(endless())
    assert next(items) == 0
    items.close()
    assert _threads() == 0
    assert len(produced) <= 3  # the one taken, the one waiting, the one being made
