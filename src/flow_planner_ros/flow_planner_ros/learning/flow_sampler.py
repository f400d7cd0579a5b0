"""The model sampler: load a checkpoint once, draw trajectories from the flow model in physical units.

    sampler = FlowSampler.from_checkpoint("model.safetensors")          # or backend="onnx"
    positions, velocities = sampler.plan(start_pos, start_vel, goal, num_samples=8, steps=5, seed=0)
    # (8, 60, 12) each, rad and rad/s, waypoint k at time (k + 1)·dt
    # an obstacle model (model.obstacles) also takes the scene: obstacles=(boxes (4, 7), mask (4,))

All candidates (best-of-N) run in one batch; the same seed gives the same samples. Sampling uses flow.integrate,
the one formulation shared with training. The ONNX Runtime backend exports the velocity network in memory (no
file) and is faster at batch 1 on CPU. Checking and choosing among samples is the planning pipeline's job
(planning_pipeline.py), not this module's.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from flow_planner_common.obstacles import BOX_DIM, MAX_OBSTACLES
from flow_planner_common.robot import NUM_JOINTS
from flow_planner_common.threads import limit_threads
from flow_planner_ros.learning.checkpoint import Checkpoint, load_checkpoint
from flow_planner_ros.learning.conditioning import make_cond, reference_from_cond
from flow_planner_ros.learning.flow import METHODS, integrate, sample_noise

BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class SampleRequest:
    """What one request asks of the sampler (see FlowSampler.plan for the fields)."""

    start_pos: np.ndarray
    start_vel: np.ndarray
    goal: np.ndarray
    num_samples: int = 1
    steps: int | None = None
    seed: int | None = None
    phase: int | None = None
    reference: tuple[np.ndarray, np.ndarray] | None = None
    obstacles: tuple[np.ndarray, np.ndarray] | None = None


class FlowSampler:
    """A loaded flow-matching trajectory generator."""

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", backend: str = "torch") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        if backend == "onnx" and device != "cpu":
            raise ValueError("the onnx backend runs on cpu")
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.backend = backend
        self.model = checkpoint.model.to(self.device).eval()
        norm = checkpoint.normalizer

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=self.device)

        self._cond_mean, self._cond_std = tensor(norm.cond_mean), tensor(norm.cond_std)
        self._out_mean = tensor(np.concatenate([norm.pos_mean, norm.vel_mean]))
        self._out_std = tensor(np.concatenate([norm.pos_std, norm.vel_std]))
        flow_cfg = checkpoint.meta.get("flow", {})
        self.default_steps = int(flow_cfg.get("integration_steps", 5))
        self.default_method = str(flow_cfg.get("method", "euler"))
        self.reference = str(flow_cfg.get("reference", "none"))  # the model generates residuals to min_jerk
        self._session = self._export_onnx() if backend == "onnx" else None
        # a network that sees t·x predicts from the conditioning alone at t = 0: one first step per request (flow.py)
        self.shared_start = None
        if getattr(self.model, "time_scaled_input", False):
            self.shared_start = "data" if getattr(self.model, "predict_data", False) else "velocity"

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = "cpu", backend: str = "torch", num_threads: int | None = None
    ) -> FlowSampler:
        """Load `path` (see checkpoint.py); raises CheckpointError on a bad or mismatched file."""
        if num_threads:
            limit_threads(num_threads)
        return cls(load_checkpoint(path, device), device, backend)

    @property
    def horizon(self) -> int:
        return self.checkpoint.horizon

    @property
    def dt(self) -> float:
        return self.checkpoint.dt

    def _export_onnx(self):
        import onnxruntime as ort

        c = self.checkpoint
        x = torch.zeros(2, c.horizon, c.channels)
        t = torch.zeros(2)
        cond = torch.zeros(2, len(c.meta["cond_layout"]))
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                self.model, (x, t, cond), buffer, dynamo=False, opset_version=17, input_names=["x", "t", "cond"],
                output_names=["v"], dynamic_axes={"x": {0: "batch"}, "t": {0: "batch"}, "cond": {0: "batch"}},
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def _velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self._session is None:
            return self.model(x, t, cond)
        (v,) = self._session.run(None, {"x": x.numpy(), "t": t.numpy(), "cond": cond.numpy()})
        return torch.from_numpy(v)

    @torch.inference_mode()
    def plan(
        self, start_pos: np.ndarray, start_vel: np.ndarray, goal: np.ndarray, num_samples: int = 1,
        steps: int | None = None, seed: int | None = None, phase: int | None = None, method: str | None = None,
        reference: tuple[np.ndarray, np.ndarray] | None = None,
        obstacles: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`num_samples` candidate trajectories for one request → positions, velocities (N, H, 12), float64.

        `obstacles`: the scene as (boxes (MAX_OBSTACLES, 7), mask (MAX_OBSTACLES,)) (flow_planner_common.obstacles
        boxes_to_array). An obstacle model reads None as an empty scene; a scene-blind model refuses a non-empty one.

        `reference`: the request's reference motion (H, 12) positions and velocities, when the caller has it
        (flow_planner_common.motion.reference_trajectory of start, start velocity and goal); else computed here.
        """
        request = SampleRequest(start_pos, start_vel, goal, num_samples, steps, seed, phase, reference, obstacles)
        return self.plan_many([request], method)[0]

    @torch.inference_mode()
    def plan_many(
        self, requests: list[SampleRequest], method: str | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The samples of several requests from one model call per distinct step count (dynamic batching): each
        request's rows are conditioned on it and start from its own seeded noise, so its samples are those that
        `plan` alone would draw. Raises ValueError for the first malformed request."""
        rows = [self._condition(r) for r in requests]
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(requests)
        for steps in sorted({int(r.steps or self.default_steps) for r in requests}):
            members = [i for i, r in enumerate(requests) if int(r.steps or self.default_steps) == steps]
            cond = np.concatenate([rows[i] for i in members])
            noise = torch.cat([sample_noise(requests[i].num_samples, self.horizon, self.checkpoint.channels,
                                            requests[i].seed) for i in members])  # fmt: skip
            references = None
            if all(requests[i].reference is not None for i in members):
                references = tuple(
                    np.concatenate([_repeat(requests[i].reference[k], requests[i].num_samples) for i in members])
                    for k in range(2)
                )
            positions, velocities = self.plan_batch(cond, steps, None, method, references, noise=noise)
            bounds = np.cumsum([0] + [requests[i].num_samples for i in members])
            for n, i in enumerate(members):
                results[i] = positions[bounds[n] : bounds[n + 1]], velocities[bounds[n] : bounds[n + 1]]
        return results

    def _condition(self, request: SampleRequest) -> np.ndarray:
        """The request's conditioning rows (num_samples, D), validated."""
        arrays = [np.asarray(a, dtype=np.float64) for a in (request.start_pos, request.start_vel, request.goal)]
        for name, a in zip(("start_pos", "start_vel", "goal"), arrays, strict=True):
            if a.shape != (NUM_JOINTS,):
                raise ValueError(f"{name} must have shape ({NUM_JOINTS},), got {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} contains NaN or Inf")
        if request.num_samples < 1:
            raise ValueError("num_samples must be >= 1")
        phase = request.phase
        if self.checkpoint.use_phase and phase is None:
            raise ValueError("this checkpoint is conditioned on the phase: pass phase=0 (reach) or 1 (carry)")
        scene = self._check_obstacles(request.obstacles)
        cond = make_cond(*arrays, phase if self.checkpoint.use_phase else None, scene)
        return np.repeat(cond, request.num_samples, axis=0)

    def _check_obstacles(
        self, obstacles: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The scene to condition on (None for a scene-blind model); ValueError for a malformed or unusable one."""
        if obstacles is None:
            if not self.checkpoint.obstacles:
                return None
            return np.zeros((MAX_OBSTACLES, BOX_DIM)), np.zeros(MAX_OBSTACLES, dtype=bool)
        boxes, mask = np.asarray(obstacles[0], dtype=np.float64), np.asarray(obstacles[1])
        if boxes.shape != (MAX_OBSTACLES, BOX_DIM) or mask.shape != (MAX_OBSTACLES,):
            raise ValueError(
                f"obstacles must be (boxes ({MAX_OBSTACLES}, {BOX_DIM}), mask ({MAX_OBSTACLES},)), got "
                f"{boxes.shape} and {mask.shape}"
            )
        mask = mask.astype(bool)
        if not np.all(np.isfinite(boxes[mask])):
            raise ValueError("obstacles contain NaN or Inf")
        if not self.checkpoint.obstacles:
            if mask.any():
                raise ValueError("this checkpoint is not conditioned on obstacles (model.obstacles is false)")
            return None
        return boxes, mask

    @torch.inference_mode()
    def plan_batch(
        self, cond: np.ndarray, steps: int | None = None, seed: int | None = None, method: str | None = None,
        reference: tuple[np.ndarray, np.ndarray] | None = None, noise: torch.Tensor | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One trajectory per row of physical conditioning (B, D) → positions, velocities (B, H, 12).

        For an obstacle model each row ends with its scene (conditioning.make_cond / build_cond with obstacles).

        `reference` (B, H, 12) positions and velocities: the rows' reference motions, if already computed.
        `noise` (B, H, C): the starting noise x0 (else drawn with `seed`).
        """
        steps = int(steps or self.default_steps)
        method = method or self.default_method
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        c = torch.as_tensor(np.asarray(cond), dtype=torch.float32, device=self.device)
        c = (c - self._cond_mean) / self._cond_std
        if noise is None:
            noise = sample_noise(c.shape[0], self.horizon, self.checkpoint.channels, seed)
        x0 = noise.to(self.device)
        x = integrate(self._velocity, x0, c, steps, method, self.shared_start)
        out = (x * self._out_std + self._out_mean).double().cpu().numpy()
        positions, velocities = out[..., :NUM_JOINTS], out[..., NUM_JOINTS:]
        if self.reference == "min_jerk":
            ref_pos, ref_vel = reference or reference_from_cond(cond, self.dt, self.horizon)
            positions, velocities = positions + ref_pos, velocities + ref_vel
        return positions, velocities



def _repeat(array: np.ndarray, count: int) -> np.ndarray:
    """(count, *shape) copies of an array."""
    return np.broadcast_to(array, (count, *np.shape(array)))
