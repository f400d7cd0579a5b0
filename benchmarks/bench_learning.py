"""Learning-core benchmark (prints numbers, asserts nothing): parameter counts and CPU latency of each model
(batch 1 and 16; 1/5/10 Euler steps, eager and ONNX Runtime), training throughput, and optionally a
synthetic training run with its diagnose report.

    python benchmarks/bench_learning.py [--threads 1] [--train-epochs 0] [--out runs/bench]

Recipe comparison (the precision table of the learning core): train each recipe of RECIPES (overrides of
config/flow_config.yaml) on the same synthetic set, diagnose it, and print sensitivity_goal, sensitivity_resample,
their ratio, training time and the 5-step batch-1 eager plan latency; `--jobs N` trains N recipes at once (one
thread each: the training times are then comparable only within one run on an otherwise idle machine).

    python benchmarks/bench_learning.py --recipes [baseline,noise0.5,...] --train-epochs 30 --train-num 512 \
        --jobs 2 --out runs/recipes
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

from flow_planner_ros.learning.checkpoint import make_meta, save_checkpoint
from flow_planner_ros.learning.flow import FlowMatching
from flow_planner_ros.learning.flow_sampler import FlowSampler
from flow_planner_ros.learning.models import build_model, count_parameters
from flow_planner_ros.learning.normalization import Normalizer
from flow_planner_ros.learning.training_config import DEFAULT_CONFIG, load_config

MODELS = {
    "unet32-64-128": {"type": "unet", "unet": {"hidden_dims": [32, 64, 128]}},
    "unet[32,64] (default)": {"type": "unet", "unet": {"hidden_dims": [32, 64]}},
    "unet[64,128,256]": {"type": "unet", "unet": {"hidden_dims": [64, 128, 256]}},
    "dit 128x4": {"type": "dit", "dit": {"hidden_dim": 128, "depth": 4, "heads": 4}},
}


#: Recipes for --recipes: overrides of the config file (config/flow_config.yaml). "config" is the file as it is.
RECIPES: dict[str, dict] = {
    "config": {},
    "baseline": {"flow": {"noise_scale": 1.0, "coupling": "independent"}},
    "noise0.5": {"flow": {"noise_scale": 0.5, "coupling": "independent"}},
    "noise0.25": {"flow": {"noise_scale": 0.25, "coupling": "independent"}},
    "ot": {"flow": {"noise_scale": 1.0, "coupling": "ot"}},
    "ot+noise0.5": {"flow": {"noise_scale": 0.5, "coupling": "ot"}},
    "ot+noise0.25": {"flow": {"noise_scale": 0.25, "coupling": "ot"}},
    "unet64-128": {"flow": {"noise_scale": 1.0, "coupling": "independent"},
                     "model": {"unet": {"hidden_dims": [64, 128]}}},
    "unet32-64-128": {"flow": {"noise_scale": 1.0, "coupling": "independent"},
                        "model": {"unet": {"hidden_dims": [32, 64, 128]}}},
    "lr1e-3": {"flow": {"noise_scale": 1.0, "coupling": "independent"}, "training": {"learning_rate": 1e-3}},
    "batch64": {"flow": {"noise_scale": 1.0, "coupling": "independent"}, "training": {"batch_size": 64}},
    "noise0.5+unet64-128": {"flow": {"noise_scale": 0.5, "coupling": "independent"},
                              "model": {"unet": {"hidden_dims": [64, 128]}}},
    "data": {"flow": {"noise_scale": 1.0, "coupling": "independent"},
             "model": {"unet": {"predict_data": True, "time_scaled_input": False}}},
    "data+time": {"flow": {"noise_scale": 1.0, "coupling": "independent"},
                  "model": {"unet": {"predict_data": True, "time_scaled_input": True}}},
    "data+ot": {"flow": {"noise_scale": 1.0, "coupling": "ot"}, "model": {"unet": {"predict_data": True}}},
    "data+unet64-128": {"flow": {"noise_scale": 1.0, "coupling": "independent"},
                        "model": {"unet": {"predict_data": True, "hidden_dims": [64, 128]}}},
    "data+lr1e-3": {"flow": {"noise_scale": 1.0, "coupling": "independent"}, "model": {"unet": {"predict_data": True}},
                    "training": {"learning_rate": 1e-3}},
    "ema0.99": {"flow": {"noise_scale": 1.0, "coupling": "independent"}, "training": {"ema_decay": 0.99}},
}
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[1] / "config" / "flow_config.yaml"


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_recipe(name: str, data: str, out: str, epochs: int, config_file: str, steps: tuple[int, ...]) -> dict:
    """Train recipe `name` on `data` for `epochs` (one thread), diagnose it; returns the row (JSON-ready)."""
    from flow_planner_ros.learning.diagnostics import diagnose
    from flow_planner_ros.learning.training import train

    torch.set_num_threads(1)
    overrides = _merge(RECIPES[name], {"training": {"epochs": epochs, "num_threads": 1}})
    cfg = load_config(config_file, overrides)
    ckpt = Path(out) / f"{name}.safetensors"
    for extra in (ckpt, Path(str(ckpt) + ".state.safetensors"), Path(str(ckpt) + ".log.csv")):
        extra.unlink(missing_ok=True)
    start = time.perf_counter()
    result = train(data, cfg, ckpt, progress_bar=False, log=lambda *_: None)
    row = {"recipe": name, "checkpoint": str(ckpt), "train_s": time.perf_counter() - start,
           "samples_per_s": result.samples_per_s, "val_loss": result.val_loss, "parameters": result.num_parameters,
           "size_mb": ckpt.stat().st_size / 1e6}
    for n in steps:
        report = diagnose(ckpt, data, steps=n)
        row[f"steps{n}"] = {k: report[k] for k in ("sensitivity_goal", "sensitivity_resample", "sensitivity_start",
                                                    "gt_mae", "goal_error")}
    return row


def recipe_table(args: argparse.Namespace) -> None:
    """--recipes: train and diagnose each recipe on one synthetic set, then time each checkpoint's plan."""
    import concurrent.futures
    import multiprocessing

    from flow_planner_ros.learning.synthetic import write_synthetic_dataset

    names = list(RECIPES) if args.recipes == "all" else args.recipes.split(",")
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    out = Path(args.out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    data = str(write_synthetic_dataset(out / f"synthetic{args.train_num}.npz", args.train_num, seed=0))
    steps = tuple(int(s) for s in args.steps.split(","))
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        futures = [pool.submit(run_recipe, n, data, str(out), args.train_epochs, args.config, steps) for n in names]
        for future in concurrent.futures.as_completed(futures):
            row = future.result()
            rows.append(row)
            print(json.dumps(row), flush=True)
    torch.set_num_threads(args.threads)
    zeros = np.zeros(12)
    for row in rows:  # one at a time, after training: latencies on a quiet machine
        planner = FlowSampler.from_checkpoint(row["checkpoint"])
        row["plan_ms"] = timed(lambda p=planner: p.plan(zeros, zeros, zeros, 1, 5, 0, phase=0), args.repeats)[0]
    rows.sort(key=lambda r: names.index(r["recipe"]))
    (out / "recipes.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{args.train_num} synthetic trajectories, {args.train_epochs} epochs, {args.jobs} job(s); goal/start "
          "perturbation 0.1 rad; plan = 5-step Euler, batch 1, eager, p50")
    head = f"{'recipe':24s} {'steps':>5s} {'sens_goal':>9s} {'resample':>9s} {'ratio':>6s} {'gt_mae':>7s} " \
           f"{'train_s':>7s} {'plan_ms':>7s} {'params':>8s} {'MB':>5s}"
    print(head)
    for row in rows:
        for n in steps:
            d = row[f"steps{n}"]
            ratio = d["sensitivity_goal"] / max(d["sensitivity_resample"], 1e-12)
            print(f"{row['recipe']:24s} {n:5d} {d['sensitivity_goal']:9.4f} {d['sensitivity_resample']:9.4f} "
                  f"{ratio:6.2f} {d['gt_mae']:7.4f} {row['train_s']:7.0f} {row['plan_ms']:7.1f} "
                  f"{row['parameters']:8d} {row['size_mb']:5.2f}")


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
    parser.add_argument("--recipes", default=None, help="comma-separated RECIPES names (or all): the recipe table")
    parser.add_argument("--jobs", type=int, default=1, help="recipes trained at once (--recipes)")
    parser.add_argument("--steps", default="5", help="comma-separated integration steps to diagnose (--recipes)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_FILE), help="config file the recipes override")
    args = parser.parse_args()
    if args.recipes:
        recipe_table(args)
        return
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
                            p.plan(z, z, z, b, s, 0, phase=0)  # phase: read only by phase models

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
        from flow_planner_ros.learning.diagnostics import diagnose
        from flow_planner_ros.learning.synthetic import write_synthetic_dataset
        from flow_planner_ros.learning.training import train

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
