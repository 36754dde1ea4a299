"""Training and inference throughput (samples/s) of the two course models on this machine's device.

Training: one optimiser step (forward, backward, AdamW) per batch, as ``course_utils.train.fit`` does.
Inference: no-grad forward passes. Random inputs of the real shapes (timings depend only on shapes).
"""
from __future__ import annotations

import torch

from benchmarks.common import best_time
from course_utils.models import ShallowCNN1D, VGG7

CASES = {"ShallowCNN1D (1×40)": (ShallowCNN1D, (1, 40), 100), "VGG7 (3×64×64)": (VGG7, (3, 64, 64), 64),
         "VGG7 (3×150×150)": (VGG7, (3, 150, 150), 64)}


def throughput(model_cls, shape, batch: int, quick: bool = False) -> tuple[float, float]:
    """(training samples/s, inference samples/s) for one batch size."""
    torch.manual_seed(0)
    model = model_cls()
    x = torch.rand(batch, *shape)
    y = torch.randint(0, 8, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    repeat = 1 if quick else 5
    model.train()
    train_s = best_time(step, repeat=repeat)
    model.eval()
    infer_s = best_time(infer, repeat=repeat)
    return batch / train_s, batch / infer_s


def run(quick: bool = False) -> list[dict]:
    """One row per model: samples/s for training and for inference (no ratio: absolute figures)."""
    rows = []
    for name, (cls, shape, batch) in CASES.items():
        if quick:
            shape, batch = (shape if len(shape) == 2 else (3, 16, 16)), 8
        train, infer = throughput(cls, shape, batch, quick)
        rows.append({"benchmark": name, "batch": batch, "train_samples_per_s": train,
                     "inference_samples_per_s": infer})
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['benchmark']:<22} batch {r['batch']:>4}  train {r['train_samples_per_s']:9.0f}/s  "
              f"inference {r['inference_samples_per_s']:9.0f}/s")
