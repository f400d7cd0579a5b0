"""Planning latency of the ROS-free planning pipeline (sample, project, check, select) on each available device, in
one run: the CPU (ONNX Runtime and torch) and, where present, CUDA (torch eager and a captured CUDA graph of the
whole Euler integration). Same checkpoint, same requests; p50/p95 over repeated plans, GPU timings synchronized.

    python benchmarks/bench_planning_devices.py [--checkpoint PATH] [--repeats 200]

It needs only torch, numpy and safetensors besides the sources, so it also runs where ROS is not installed:
    PYTHONPATH=src/flow_planner_common:src/flow_planner_ros python benchmarks/bench_planning_devices.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from flow_planner_common.robot import HOME_POSITIONS, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_ros.flow import integrate, sample_noise
from flow_planner_ros.flow_sampler import FlowSampler
from flow_planner_ros.plan_request import PlanRequest
from flow_planner_ros.planning_pipeline import PlanningPipeline
from flow_planner_ros.trajectory_safety import SafetyLimits

WORKSPACE = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = WORKSPACE / "src" / "flow_planner_ros" / "checkpoints" / "default.safetensors"
GOAL = HOME_POSITIONS + np.array([0.3, -0.2, 0.25, 0.2, -0.15, 0.1, -0.3, 0.2, -0.25, -0.2, 0.15, -0.1])


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1e3 * s for s in seconds)
    return f"p50 {statistics.median(ms):7.2f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:7.2f} ms"


def time_pipeline(sampler: FlowSampler, samples: int, repeats: int, sync) -> list[float]:
    limits = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
    pipeline = PlanningPipeline(sampler, limits)
    request = PlanRequest(HOME_POSITIONS.copy(), np.zeros(NUM_JOINTS), GOAL, samples, 5, 0, False)
    for _ in range(5):
        pipeline.plan(request)
    times = []
    for i in range(repeats):
        request = PlanRequest(HOME_POSITIONS.copy(), np.zeros(NUM_JOINTS), GOAL, samples, 5, i, False)
        sync()
        started = time.perf_counter()
        pipeline.plan(request)
        sync()
        times.append(time.perf_counter() - started)
    return times


def time_cuda_graph(sampler: FlowSampler, samples: int, repeats: int) -> list[float]:
    """The model's 5-step Euler integration captured once as a CUDA graph and replayed (network time only)."""
    device = torch.device("cuda")
    channels, horizon = sampler.checkpoint.channels, sampler.horizon
    cond = torch.zeros(samples, len(sampler.checkpoint.meta["cond_layout"]), device=device)
    x0 = sample_noise(samples, horizon, channels, 0, device)
    with torch.inference_mode():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                integrate(sampler.model, x0, cond, 5, "euler")
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = integrate(sampler.model, x0, cond, 5, "euler")
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        graph.replay()
        out.cpu()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs: list[tuple[str, str, str]] = [("cpu", "onnx", "CPU, ONNX Runtime, 1 thread"), ("cpu", "torch", "CPU, torch")]
    if torch.cuda.is_available():
        runs.append(("cuda", "torch", f"CUDA ({torch.cuda.get_device_name()}), torch eager"))
    print(f"checkpoint {args.checkpoint.name}; full pipeline (5 Euler steps, projection, checks), {args.repeats} plans")
    for device, backend, label in runs:
        try:
            sampler = FlowSampler.from_checkpoint(args.checkpoint, device=device, backend=backend, num_threads=1)
        except Exception as exc:  # e.g. no onnxruntime where this runs
            print(f"  {label}: skipped ({type(exc).__name__}: {exc})")
            continue
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for samples in (1, 8, 32):
            timing = percentiles(time_pipeline(sampler, samples, args.repeats, sync))
            print(f"  {label:<45} {samples:>2} samples: {timing}")
        if device == "cuda":
            for samples in (1, 8, 32):
                graph = percentiles(time_cuda_graph(sampler, samples, args.repeats))
                print(f"  {'CUDA graph of the integration (network only)':<45} {samples:>2} samples: {graph}")


if __name__ == "__main__":
    main()
