"""Produce the next item of an iterator in a background thread while the caller works on this one.

Decoding a compressed Arrow batch and joining batches run in C++ with the GIL released, so on two
cores reading the next chunk overlaps integrating the current one (measured on the 24-hour
benchmark: 0.90 s down to 0.69-0.86 s). At most one item waits in the hand-off, so memory
stays bounded by three chunks: the one in use, the one waiting, the one being read.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

Item = TypeVar("Item")

_POLL_S = 0.05  # how soon a producer notices that the consumer has gone


def read_ahead(items: Iterator[Item]) -> Iterator[Item]:
    """Yield ``items`` in order; exceptions raised while producing them are raised here, in the caller.

    If the caller stops early (an exception, or ``close()`` on this generator), the producer
    stops at its next item and the thread is joined, so nothing is left running.
    """
    handoff: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(kind: str, payload: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put((kind, payload), timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over("item", item):
                    return
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer's thread
            hand_over("error", error)
            return
        hand_over("done", None)

    producer = threading.Thread(target=produce, name="efftrace-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            kind, payload = handoff.get()
            if kind == "done":
                return
            if kind == "error":
                raise payload  # type: ignore[misc]
            yield payload  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()
