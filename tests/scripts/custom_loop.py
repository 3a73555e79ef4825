"""A custom PyTorch loop recorded through the Python API (with or without effrec around it)."""

import sys

import torch

from efftrace.recorder import Recorder

model = torch.nn.Linear(8, 8)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
with Recorder(out=sys.argv[1], name="custom") as rec:
    rec.describe_model(model)
    for step in range(5):
        with rec.step(samples=4, tokens=4 * (10 + step)) as record:
            loss = model(torch.randn(4, 8)).pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            record.loss = float(loss)
    with rec.mark("checkpoint"):
        torch.save(model.state_dict(), sys.argv[1] + "/ckpt.pt")
print(rec.run_dir)
