"""Learning-core benchmark (prints numbers, asserts nothing): parameter counts and CPU latency of each model
(batch 1 and 16; 1/5/10 Euler steps, eager and ONNX Runtime), training throughput, and optionally a
synthetic training run with its diagnose report.

    python benchmarks/bench_learning.py [--threads 1] [--train-epochs 0] [--out runs/bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from flow_planner_ros.checkpoint import make_meta, save_checkpoint
from flow_planner_ros.config import DEFAULT_CONFIG, load_config
from flow_planner_ros.flow import FlowMatching
from flow_planner_ros.flow_sampler import FlowSampler
from flow_planner_ros.models import build_model, count_parameters
from flow_planner_ros.normalization import Normalizer

MODELS = {
    "unet[32,64,128]": {"type": "unet", "unet": {"hidden_dims": [32, 64, 128]}},
    "unet[32,64] (default)": {"type": "unet", "unet": {"hidden_dims": [32, 64]}},
    "unet[64,128,256]": {"type": "unet", "unet": {"hidden_dims": [64, 128, 256]}},
    "dit 128x4": {"type": "dit", "dit": {"hidden_dim": 128, "depth": 4, "heads": 4}},
}


def timed(fn, repeats: int) -> tuple[float, float]:
    """(p50, p90) wall time of fn() in ms after 2 warm-up calls."""
    for _ in range(2):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def untrained_checkpoint(model_cfg: dict, path: Path) -> Path:
    rng = np.random.default_rng(0)
    norm = Normalizer.fit(rng.normal(size=(8, 60, 12)), rng.normal(size=(8, 60, 12)), rng.normal(size=(8, 36)))
    model = build_model(model_cfg, 24, 36, 60)
    return save_checkpoint(path, model, norm, make_meta(model_cfg, DEFAULT_CONFIG["flow"], False, 0.05, {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--train-epochs", type=int, default=0, help="also train on a synthetic set for N epochs")
    parser.add_argument("--train-num", type=int, default=1000)
    parser.add_argument("--out", default=None, help="folder for the synthetic run (default: temp)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    flow = FlowMatching(0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in MODELS.items():
            ckpt = untrained_checkpoint(cfg, Path(tmp) / "m.safetensors")
            planners = {backend: FlowSampler.from_checkpoint(ckpt, backend=backend) for backend in ("torch", "onnx")}
            print(f"\n{name}: {count_parameters(planners['torch'].model):,} parameters")
            zeros = np.zeros(12)
            for backend, planner in planners.items():
                for batch in (1, 16):
                    row = []
                    for steps in (1, 5, 10):
                        def call(p=planner, b=batch, s=steps, z=zeros) -> None:
                            p.plan(z, z, z, b, s, 0)

                        p50, p90 = timed(call, args.repeats)
                        row.append(f"{steps:>2} steps p50 {p50:6.1f} ms (p90 {p90:6.1f})")
                    print(f"  {backend:5s} B={batch:<2d} full plan: " + " | ".join(row))
            model = build_model(cfg, 24, 36, 60)
            opt = torch.optim.AdamW(model.parameters(), 1e-3)
            x, c = torch.randn(64, 60, 24), torch.randn(64, 36)

            def step(m=model, o=opt, x=x, c=c) -> None:
                loss = flow.loss(m, x, c)
                o.zero_grad()
                loss.backward()
                o.step()

            p50, _ = timed(step, max(5, args.repeats // 4))
            print(f"  training: batch 64 step p50 {p50:.0f} ms = {64e3 / p50:.0f} samples/s")
    if args.train_epochs:
        from flow_planner_ros.diagnostics import diagnose
        from flow_planner_ros.synthetic import write_synthetic_dataset
        from flow_planner_ros.training import train

        out = Path(args.out or tempfile.mkdtemp())
        data = write_synthetic_dataset(out / "synthetic.npz", args.train_num, seed=0)
        cfg = load_config(None, {"training": {"epochs": args.train_epochs, "num_threads": args.threads}})
        start = time.perf_counter()
        result = train(data, cfg, out / "synthetic.safetensors", progress_bar=False)
        print(f"\nsynthetic run: {result.epochs} epochs in {time.perf_counter() - start:.0f} s, train_loss "
              f"{result.train_loss:.4f}, val_loss {result.val_loss:.4f}, {result.samples_per_s:.0f} samples/s")
        report = diagnose(out / "synthetic.safetensors", data, plots_dir=out / "plots")
        print(json.dumps({k: v for k, v in report.items() if k != "training"}, indent=2))


if __name__ == "__main__":
    main()
