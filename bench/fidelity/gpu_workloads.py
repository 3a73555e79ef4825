"""Synthetic GPU workloads with known shapes, each iteration recorded as a step through the API.

    python bench/fidelity/gpu_workloads.py bursty [--seed 0] [--out RESULT.json]
    python bench/fidelity/gpu_workloads.py matmul|copy [--seconds 20] [--out RESULT.json]

``bursty``: bf16 8192³ matmul bursts of 50 ms to 3 s separated by idle gaps of 0.1 to 2 s, in a
seeded random order: the case where the 1-s averaged power lags and a slow poll misses edges.
Each burst is one step, so per-step energy can be compared between power sources.
``matmul`` (compute-bound) and ``copy`` (memory-bound: 2 GiB device-to-device copies) run for
``--seconds`` in steps of about 0.25 s, and write what they achieved (TFLOP/s, GB/s) to ``--out``,
so the PCU sources can be set against a known utilisation. Run them under ``effrec``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from efftrace.recorder import Recorder

BURSTS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0)
GAPS_S = (0.1, 0.3, 0.7, 1.0, 2.0)
MATMUL_N = 8192
COPY_BYTES = 2 << 30


def _matmul_until(deadline: float, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> int:
    """Queue matmuls until ``deadline`` (checking the clock after each synchronised group); returns how many."""
    done = 0
    while time.perf_counter() < deadline:
        for _ in range(4):
            torch.matmul(a, b, out=out)
        torch.cuda.synchronize()
        done += 4
    return done


def bursty(seed: int) -> dict:
    rng = random.Random(seed)
    plan = [(burst, rng.choice(GAPS_S)) for burst in BURSTS_S for _ in range(4)]
    rng.shuffle(plan)
    a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    out = torch.empty_like(a)
    _matmul_until(time.perf_counter() + 1.0, a, b, out)  # warm up clocks and kernels
    time.sleep(2.0)
    bursts = []
    with Recorder(name="bursty") as rec:
        for burst_s, gap_s in plan:
            with rec.step():
                began = time.perf_counter()
                count = _matmul_until(began + burst_s, a, b, out)
            bursts.append({"burst_s": burst_s, "matmuls": count, "gap_s": gap_s})
            time.sleep(gap_s)
    return {"workload": "bursty", "seed": seed, "bursts": bursts}


def steady(kind: str, seconds: float) -> dict:
    if kind == "matmul":
        a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
        b, out = torch.randn_like(a), torch.empty_like(a)

        def work() -> None:
            torch.matmul(a, b, out=out)

        per_call = 2 * MATMUL_N**3  # FLOPs
    else:
        source = torch.empty(COPY_BYTES, dtype=torch.uint8, device="cuda")
        target = torch.empty_like(source)

        def work() -> None:
            target.copy_(source)

        per_call = 2 * COPY_BYTES  # bytes read and written
    for _ in range(3):
        work()
    torch.cuda.synchronize()
    calls, busy = 0, 0.0
    with Recorder(name=kind) as rec:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            with rec.step():
                began = time.perf_counter()
                while time.perf_counter() - began < 0.25:
                    for _ in range(4):
                        work()
                    torch.cuda.synchronize()
                    calls += 4
                busy += time.perf_counter() - began
    rate = calls * per_call / busy
    achieved = {"tflops": rate / 1e12} if kind == "matmul" else {"gb_per_s": rate / 1e9}
    return {"workload": kind, "seconds": busy, "calls": calls, **achieved}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["bursty", "matmul", "copy"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = bursty(args.seed) if args.kind == "bursty" else steady(args.kind, args.seconds)
    result["gpu"] = torch.cuda.get_device_name()
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({key: value for key, value in result.items() if key != "bursts"}))


if __name__ == "__main__":
    main()
