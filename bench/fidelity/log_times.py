"""The steps and wall times a Trainer logged to TensorBoard, and its own all_results.json, as JSON.

    python bench/fidelity/log_times.py OUTPUT_DIR > RUN.json

Reads the ``train/loss`` scalars of the newest run under OUTPUT_DIR/runs/ with TensorBoard's own
event reader. The Trainer writes each at the end of a logged step, right after reading the loss
back from the GPU, so the wall times mark synchronised step ends in a run with or without effrec.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> None:
    output_dir = Path(sys.argv[1])
    newest = max((output_dir / "runs").iterdir(), key=lambda run: run.stat().st_mtime)
    events = EventAccumulator(str(newest), size_guidance={"scalars": 0})
    events.Reload()
    losses = events.Scalars("train/loss")
    results = output_dir / "all_results.json"
    print(
        json.dumps(
            {
                "steps": [event.step for event in losses],
                "wall_times": [event.wall_time for event in losses],
                "all_results": json.loads(results.read_text()) if results.is_file() else None,
            }
        )
    )


if __name__ == "__main__":
    main()
