"""Write synthetic run directories in trace format v1, with signals whose integrals are known exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.recorder.format import schema

T0_NS = 1_800_000_000 * 1_000_000_000  # a round epoch time; every synthetic time is T0 + seconds


def ns(seconds: float | np.ndarray) -> Any:
    return T0_NS + np.round(np.asarray(seconds, dtype=np.float64) * 1e9).astype(np.int64)


def write_stream(path: Path, table_schema: pa.Schema, columns: dict[str, Any], batch_rows: int = 1000) -> None:
    """Write ``columns`` (missing ones null) as an Arrow IPC stream in batches of ``batch_rows``."""
    rows = len(next(iter(columns.values())))
    arrays = []
    for field in table_schema:
        values = columns.get(field.name)
        if values is None:
            arrays.append(pa.nulls(rows, field.type))
        else:
            values = np.asarray(values) if not isinstance(values, list) else values
            if isinstance(values, np.ndarray) and values.dtype.kind == "f" and not pa.types.is_floating(field.type):
                mask = np.isnan(values)
                arrays.append(
                    pa.array(
                        np.round(np.where(mask, 0, values)).astype(field.type.to_pandas_dtype()),
                        type=field.type,
                        mask=mask,
                    )
                )
            else:
                arrays.append(pa.array(values, type=field.type))
    table = pa.Table.from_arrays(arrays, schema=table_schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table_schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)


class TraceBuilder:
    """A run directory under construction: GPU samples, power-buffer samples and events per host."""

    def __init__(self, run_dir: Path, host: str = "node", interval_s: float = 0.1, batch_rows: int = 1000) -> None:
        self.run_dir = run_dir
        self.batch_rows = batch_rows
        self.host = host
        self.gpus: list[dict[str, Any]] = []
        self.samples: dict[str, list[np.ndarray]] = {}
        self.power: dict[str, list[np.ndarray]] = {}
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.meta: dict[str, Any] = {
            "format_version": schema.FORMAT_VERSION,
            "recorder_version": "0.1.0",
            "name": run_dir.name,
            "status": "complete",
            "started_ns": int(T0_NS),
            "ended_ns": None,
            "command": ["train"],
            "hosts": [{"hostname": host, "gpus": self.gpus}],
            "sampling": {"interval_s": interval_s, "energy_interval_s": 1.0, "cuda_sync": True},
            "model": {"total_params": 1_000_000, "trainable_params": 1_000_000},
            "world_size": 1,
            "ranks": [],
        }

    def gpu(self, index: int, name: str = "NVIDIA H100 80GB HBM3") -> None:
        self.gpus.append({"index": index, "uuid": f"GPU-{index}", "name": name, "memory_total_bytes": 80 << 30})

    def gpu_samples(self, gpu: int, seconds: np.ndarray, **columns: np.ndarray) -> None:
        block = {"time_ns": ns(seconds), "gpu": np.full(len(seconds), gpu, dtype=np.int16), **columns}
        for key, values in block.items():
            self.samples.setdefault(key, []).append(np.asarray(values))

    def power_samples(self, gpu: int, seconds: np.ndarray, power_mw: np.ndarray) -> None:
        block = {"time_ns": ns(seconds), "gpu": np.full(len(seconds), gpu, dtype=np.int16), "power_mw": power_mw}
        for key, values in block.items():
            self.power.setdefault(key, []).append(np.asarray(values))

    def step(self, rank: int, step: int, start: float, end: float, **fields: Any) -> None:
        row = {
            "kind": "train_step",
            "rank": rank,
            "pid": 100 + rank,
            "step": step,
            "start_ns": int(ns(start)),
            "end_ns": int(ns(end)),
            "synced": True,
            **fields,
        }
        self.events.setdefault(rank, []).append(row)

    def generate(self, rank: int, start: float, end: float, generated_tokens: int, samples: int = 1) -> None:
        row = {
            "kind": "generate",
            "rank": rank,
            "pid": 100 + rank,
            "start_ns": int(ns(start)),
            "end_ns": int(ns(end)),
            "generated_tokens": generated_tokens,
            "samples": samples,
        }
        self.events.setdefault(rank, []).append(row)

    def _write(self, name: str, table_schema: pa.Schema, columns: dict[str, Any]) -> None:
        write_stream(self.run_dir / name, table_schema, columns, self.batch_rows)

    def write(self, end_s: float | None = None) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if end_s is not None:
            self.meta["ended_ns"] = int(ns(end_s))
        (self.run_dir / schema.META_FILE).write_text(json.dumps(self.meta))
        if self.samples:
            columns = {key: self._merge(key, self.samples) for key in self.samples}
            write_stream(
                self.run_dir / schema.gpu_samples_file(self.host), schema.GPU_SAMPLES_SCHEMA, columns, self.batch_rows
            )
        if self.power:
            columns = {key: self._merge(key, self.power) for key in self.power}
            write_stream(
                self.run_dir / schema.power_samples_file(self.host),
                schema.POWER_SAMPLES_SCHEMA,
                columns,
                self.batch_rows,
            )
        for rank, rows in self.events.items():
            columns = {field.name: [row.get(field.name) for row in rows] for field in schema.EVENTS_SCHEMA}
            write_stream(
                self.run_dir / schema.events_file(self.host, rank), schema.EVENTS_SCHEMA, columns, self.batch_rows
            )
        return self.run_dir

    @staticmethod
    def _merge(key: str, store: dict[str, list[np.ndarray]]) -> np.ndarray:
        """Blocks added per GPU, interleaved by time as the sampler writes them."""
        times = np.concatenate(store["time_ns"])
        order = np.argsort(times, kind="stable")
        return np.concatenate(
            [np.asarray(block, dtype=np.float64) if key != "time_ns" else block for block in store[key]]
        )[order]
