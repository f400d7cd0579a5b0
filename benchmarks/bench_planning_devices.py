"""Planning latency of the ROS-free planning pipeline (sample, project, check, select) on each available device, in
one run: the CPU (ONNX Runtime and torch) and, where present, CUDA (torch eager and a captured CUDA graph of the
whole Euler integration). Same checkpoint, same requests; p50/p95 over repeated plans, GPU timings synchronized.
Two requests of the scene family (the shipped model's training distribution; the numbers of the planner tests'
scenes, src/flow_planner_ros/test/scenes_for_tests.py): a reach from home in an empty scene, and a carry past a
barrier with the tray carried (clearance checks of the tray, refinement when no sample is clear). The share of
plans that succeeded is printed beside the times.

    python benchmarks/bench_planning_devices.py [--checkpoint PATH] [--repeats 200]

It needs only torch, numpy and safetensors besides the sources, so it also runs where ROS is not installed:
    PYTHONPATH=src/flow_planner_common:src/flow_planner_ros python benchmarks/bench_planning_devices.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from flow_planner_common.grip_follower import GripFollower
from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.plan_scene import EMPTY_SCENE, PlanScene
from flow_planner_common.robot import HORIZON, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_ros.learning.flow import integrate, sample_noise
from flow_planner_ros.learning.flow_sampler import FlowSampler
from flow_planner_ros.planning.pipeline import PlanningPipeline
from flow_planner_ros.planning.request import PlanRequest
from flow_planner_ros.planning.trajectory_safety import SafetyLimits

WORKSPACE = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = WORKSPACE / "src" / "flow_planner_ros" / "checkpoints" / "default.safetensors"
_spec = importlib.util.spec_from_file_location(
    "scenes_for_tests", WORKSPACE / "src" / "flow_planner_ros" / "test" / "scenes_for_tests.py"
)
SCENES = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SCENES)


def cases() -> dict[str, tuple[np.ndarray, np.ndarray, PlanScene]]:
    """name -> (start, goal, scene) of the timed requests."""
    grasp = ArmKinematics().grasp_from_start(SCENES.BARRIER_REACH, SCENES.BARRIER_TRAY)
    return {
        "reach": (SCENES.HOME, SCENES.HANDLE_BOX_REACH, EMPTY_SCENE),
        "carry": (SCENES.BARRIER_REACH, SCENES.BARRIER_CARRY, PlanScene.from_boxes([SCENES.BARRIER], grasp)),
    }


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1e3 * s for s in seconds)
    return f"p50 {statistics.median(ms):7.2f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:7.2f} ms"


def time_pipeline(
    sampler: FlowSampler, samples: int, repeats: int, sync, case: tuple[np.ndarray, np.ndarray, PlanScene],
    checker_backend: str = "auto",
) -> tuple[list[float], float]:
    """Plan times (s) and the share of successful plans; checker_backend: SphereChecker's (and so the grip
    follower's) for the CPU ("auto": the compiled kernels)."""
    limits = SafetyLimits.from_arrays(JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS)
    pipeline = PlanningPipeline(sampler, limits)
    if checker_backend != "auto":
        checker = SphereChecker(device=pipeline.safety.device, backend=checker_backend)
        pipeline.safety.checker, pipeline.grip = checker, GripFollower(checker)
    start, goal, scene = case
    steps = sampler.default_steps
    for i in range(5):
        warm_up = PlanRequest(start.copy(), np.zeros(NUM_JOINTS), goal, samples, steps, 10_000 + i, False)
        pipeline.plan(warm_up, scene=scene)
    times, successes = [], 0
    for i in range(repeats):
        request = PlanRequest(start.copy(), np.zeros(NUM_JOINTS), goal, samples, steps, i, False)
        sync()
        started = time.perf_counter()
        result = pipeline.plan(request, scene=scene)
        sync()
        times.append(time.perf_counter() - started)
        successes += result.success
    return times, successes / repeats


def time_cuda_graph(sampler: FlowSampler, samples: int, repeats: int) -> list[float]:
    """The model's Euler integration (its default steps) captured once as a CUDA graph and replayed (network time
    only)."""
    device = torch.device("cuda")
    channels, horizon = sampler.checkpoint.channels, sampler.horizon
    cond = torch.zeros(samples, len(sampler.checkpoint.meta["cond_layout"]), device=device)
    x0 = sample_noise(samples, horizon, channels, 0, device)
    with torch.inference_mode():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                integrate(sampler.model, x0, cond, sampler.default_steps, "euler")
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = integrate(sampler.model, x0, cond, sampler.default_steps, "euler")
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        graph.replay()
        out.cpu()
        times.append(time.perf_counter() - started)
    return times


def checker_rate(device: str, samples: int, repeats: int, sync, backend: str = "auto") -> float:
    """Configurations per second of the sphere checker alone on `device`: the carry case's barrier and carried tray,
    `samples` x HORIZON configurations already on the device (as the pipeline holds them)."""
    start, goal, scene = cases()["carry"]
    checker = SphereChecker(device=device, backend=backend)
    line = np.linspace(start, goal, HORIZON)
    rng = np.random.default_rng(0)
    q = torch.as_tensor(line[None] + rng.normal(0.0, 0.05, (samples, HORIZON, NUM_JOINTS)), dtype=torch.float32,
                        device=device)  # fmt: skip
    with torch.inference_mode():
        for _ in range(3):
            checker.clearance(q, scene.boxes, scene.mask, grasp=scene.grasp)
        times = []
        for _ in range(repeats):
            sync()
            started = time.perf_counter()
            checker.clearance(q, scene.boxes, scene.mask, grasp=scene.grasp)
            sync()
            times.append(time.perf_counter() - started)
    return samples * HORIZON / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--samples", default="1,8,32", help="comma-separated best-of-N values")
    parser.add_argument("--devices", default="cpu,cuda",
                        help="comma-separated subset of cpu,cuda; torch-checker: also the CPU with the checker, "
                             "the safety check's sweep, grip and tilt and the grip follower in torch ops instead of "
                             "the compiled kernels")  # fmt: skip
    args = parser.parse_args()
    counts = [int(n) for n in args.samples.split(",") if n]
    torch.set_num_threads(1)
    runs: list[tuple[str, str, str, str]] = []  # device, network backend, checker backend, label
    if "cpu" in args.devices:
        runs += [("cpu", "onnx", "auto", "CPU, ONNX Runtime, 1 thread"), ("cpu", "torch", "auto", "CPU, torch")]
        if "torch-checker" in args.devices:  # the checks in torch ops (the CUDA path's code), same run
            runs.append(("cpu", "onnx", "torch", "CPU, ONNX, torch checker"))
    if torch.cuda.is_available() and "cuda" in args.devices:
        runs.append(("cuda", "torch", "auto", f"CUDA ({torch.cuda.get_device_name()}), torch eager"))
    steps = FlowSampler.from_checkpoint(args.checkpoint).default_steps
    print(f"checkpoint {args.checkpoint.name}; full pipeline ({steps} Euler steps, projection, checks), "
          f"{args.repeats} plans")
    for device, backend, checker_backend, label in runs:
        try:
            sampler = FlowSampler.from_checkpoint(args.checkpoint, device=device, backend=backend, num_threads=1)
        except Exception as exc:  # e.g. no onnxruntime where this runs
            print(f"  {label}: skipped ({type(exc).__name__}: {exc})")
            continue
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for name, case in cases().items():
            for samples in counts:
                times, success = time_pipeline(sampler, samples, args.repeats, sync, case, checker_backend)
                print(f"  {label:<30} {name}, {samples:>2} samples: {percentiles(times)}, {success:.0%} succeeded")
        for samples in counts:
            rate = checker_rate(device, samples, args.repeats, sync, checker_backend)
            print(f"  {label:<30} sphere checker alone, carry, {samples} x {HORIZON} configurations: {rate:,.0f}/s")
        if device == "cuda":
            for samples in counts:
                graph = percentiles(time_cuda_graph(sampler, samples, args.repeats))
                print(f"  {'CUDA graph of the integration (network only)':<45} {samples:>2} samples: {graph}")


if __name__ == "__main__":
    main()
