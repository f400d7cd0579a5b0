"""ROS-free MuJoCo simulation of the two arms and the tray (importable without rclpy).

The arms are driven like ros2_control joint_trajectory_controllers: each arm follows a cubic Hermite trajectory
through its waypoints; a new trajectory replaces the running one starting from the last commanded state (position
and velocity), so the command never jumps. Between trajectories an arm holds its last commanded position.
Each physics step the commanded position and velocity go to a PD actuator pair (see the MJCF).

Every `monitor_interval` physics steps (and at the end of every `step()` call) a monitor updates `ExecutionStats`
(collisions, limits, tray height) used by the success check, and checks stability: NaN/Inf or MuJoCo's bad-state
warnings, runaway velocities, deep penetration. An unstable state raises `SimulationUnstable`; `reset()` recovers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from data_collector_ros.interpolation import HermiteTrajectory
from data_collector_ros.scene import ARMS, SceneIndex, classify_contacts, load_model, obstacle_contacts, place_obstacles
from flow_planner_common.obstacles import Box
from flow_planner_common.robot import HOME_POSITIONS, JOINT_POSITION_LIMITS, JOINT_VELOCITY_LIMITS, NUM_JOINTS

ARM_JOINTS = NUM_JOINTS // 2
_BAD_STATE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)


class SimulationUnstable(RuntimeError):
    """The physics state diverged (NaN/Inf, runaway velocity, deep penetration). Call `reset()` to recover."""


@dataclass(frozen=True)
class StabilityLimits:
    """Thresholds beyond which the state counts as diverged."""

    max_joint_speed: float = 50.0  # rad/s, any dof (UR5e limit is pi)
    max_tray_speed: float = 20.0  # m/s
    max_penetration: float = 0.05  # m, deepest contact


@dataclass(frozen=True)
class SimState:
    """Measured state: time (s), arm positions/velocities (12,) in JOINT_NAMES order, tray pose (7,) and
    grasp flags (left, right)."""

    time: float
    positions: np.ndarray
    velocities: np.ndarray
    tray_pose: np.ndarray
    grasped: tuple[bool, bool]


@dataclass
class ExecutionStats:
    """What happened since the last `reset_stats()` (filled every physics step)."""

    steps: int = 0
    arm_arm_contact: bool = False
    arm_env_contact: bool = False
    arm_obstacle_contact: bool = False
    tray_obstacle_contact: bool = False
    first_collision: str = ""
    max_position_excess: float = 0.0  # rad beyond a position limit (0 = within)
    max_velocity_ratio: float = 0.0  # max |qd| / velocity limit
    min_tray_z: float = np.inf
    max_tray_tilt: float = 0.0  # rad between tray z axis and world z
    max_command_velocity_ratio: float = 0.0  # same for the commanded velocities
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GraspResult:
    attached: bool
    distances: np.ndarray  # (2,) end effector to handle, m
    message: str


def _normalized_pose(pose: np.ndarray) -> np.ndarray:
    pose = np.asarray(pose, dtype=float).copy()
    if pose.shape != (7,) or not np.all(np.isfinite(pose)):
        raise ValueError(f"tray pose must be 7 finite values (x y z qw qx qy qz), got {pose}")
    norm = np.linalg.norm(pose[3:])
    if norm < 1e-9:
        raise ValueError("tray pose quaternion has zero norm")
    pose[3:] /= norm
    return pose


class Simulation:
    """The dual-arm tray scene with trajectory-following arm controllers."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        stability: StabilityLimits | None = None,
        monitor_interval: int = 5,
    ) -> None:
        self.model = load_model(model_path)
        self.data = mujoco.MjData(self.model)
        self.index = SceneIndex.from_model(self.model)
        self.stability = stability or StabilityLimits()
        for name, adr in (("qpos", self.index.qpos_adr), ("qvel", self.index.dof_adr)):
            if not np.array_equal(adr, adr[0] + np.arange(NUM_JOINTS)):
                raise ValueError(f"scene: arm joints must be contiguous in {name} in JOINT_NAMES order")
        self._q = slice(int(self.index.qpos_adr[0]), int(self.index.qpos_adr[0]) + NUM_JOINTS)
        self._v = slice(int(self.index.dof_adr[0]), int(self.index.dof_adr[0]) + NUM_JOINTS)
        self._ctrl_pos = self.index.position_actuators
        self._ctrl_vel = self.index.velocity_actuators
        self._tray_q = slice(self.index.tray_qpos_adr, self.index.tray_qpos_adr + 7)
        self._tray_v = slice(self.index.tray_dof_adr, self.index.tray_dof_adr + 3)
        self.rest_tray_pose = self.model.qpos0[self._tray_q].copy()
        self._trajectories: list[tuple[HermiteTrajectory, float] | None] = [None, None]
        self._hold = np.array(HOME_POSITIONS, dtype=float)
        self._unstable = ""
        self._lower, self._upper = JOINT_POSITION_LIMITS[:, 0].copy(), JOINT_POSITION_LIMITS[:, 1].copy()
        self._inv_vel_limits = 1.0 / JOINT_VELOCITY_LIMITS
        #: Physics steps between two monitor samples (collisions, limits, stability); 5 = every 10 ms.
        self.monitor_interval = monitor_interval
        self.obstacles: tuple[Box, ...] = ()
        self.reset()

    # ----------------------------------------------------------------- state
    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    @property
    def time(self) -> float:
        return float(self.data.time)

    def reset(self, tray_pose: np.ndarray | None = None, positions: np.ndarray | None = None) -> SimState:
        """Arms at `positions` (default HOME_POSITIONS) at rest, tray at `tray_pose` (default: the MJCF's resting
        pose), grasp released, no trajectory, stats cleared. Clears an instability."""
        pose = self.rest_tray_pose if tray_pose is None else _normalized_pose(tray_pose)
        q = np.array(HOME_POSITIONS if positions is None else positions, dtype=float)
        if q.shape != (NUM_JOINTS,) or not np.all(np.isfinite(q)):
            raise ValueError(f"positions must be {NUM_JOINTS} finite values")
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._q] = q
        self.data.qpos[self._tray_q] = pose
        self.data.eq_active[:] = 0
        self._hold = q.copy()
        self._trajectories = [None, None]
        self._unstable = ""
        mujoco.mj_forward(self.model, self.data)
        self.reset_stats()
        return self.state()

    def set_obstacles(self, boxes: Sequence[Box]) -> None:
        """Place the scene's boxes (at most MAX_OBSTACLES; [] = none); they stay until set again."""
        place_obstacles(self.model, self.index, list(boxes))
        self.obstacles = tuple(boxes)
        mujoco.mj_forward(self.model, self.data)

    def state(self) -> SimState:
        d = self.data
        return SimState(
            time=float(d.time),
            positions=d.qpos[self._q].copy(),
            velocities=d.qvel[self._v].copy(),
            tray_pose=d.qpos[self._tray_q].copy(),
            grasped=tuple(bool(d.eq_active[w]) for w in self.index.grasp_welds),
        )

    def ee_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector site positions (2, 3) and quaternions (2, 4, w x y z), left then right."""
        positions = self.data.site_xpos[self.index.ee_sites].copy()
        quats = np.zeros((2, 4))
        for i, site in enumerate(self.index.ee_sites):
            mujoco.mju_mat2Quat(quats[i], self.data.site_xmat[site])
        return positions, quats

    def handle_positions(self) -> np.ndarray:
        """Current handle site positions (2, 3)."""
        return self.data.site_xpos[self.index.handle_sites].copy()

    # ------------------------------------------------------------ trajectories
    def command(self, t: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Commanded positions and velocities (12,) at time t (default: now)."""
        t = self.time if t is None else t
        q, v = self._command_batch(np.array([t]))
        return q[0], v[0]

    def _command_batch(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.tile(self._hold, (len(times), 1))
        v = np.zeros_like(q)
        for arm, active in enumerate(self._trajectories):
            if active is not None:
                trajectory, start = active
                cols = slice(arm * ARM_JOINTS, (arm + 1) * ARM_JOINTS)
                q[:, cols], v[:, cols] = trajectory.sample(times - start)
        return q, v

    def send_trajectory(
        self, times: np.ndarray, positions: np.ndarray, velocities: np.ndarray, arm: int | None = None
    ) -> HermiteTrajectory:
        """Replace the running trajectory of one arm (0 left, 1 right; positions (N, 6)) or of both (None;
        positions (N, 12)) from the current commanded state. times: (N,) from now, > 0, strictly increasing."""
        arms = [0, 1] if arm is None else [arm]
        cols = slice(arms[0] * ARM_JOINTS, (arms[-1] + 1) * ARM_JOINTS)
        q_now, v_now = self.command()
        full = HermiteTrajectory.from_waypoints(q_now[cols], v_now[cols], times, positions, velocities)
        for a in arms:
            part = slice((a - arms[0]) * ARM_JOINTS, (a - arms[0] + 1) * ARM_JOINTS)
            self._trajectories[a] = (
                HermiteTrajectory(full.times, full.positions[:, part], full.velocities[:, part]),
                self.time,
            )
            self._hold[a * ARM_JOINTS : (a + 1) * ARM_JOINTS] = full.positions[-1, part]
        ratio = np.max(np.abs(full.velocities[1:]) / np.concatenate([JOINT_VELOCITY_LIMITS[cols]]))
        self.stats.max_command_velocity_ratio = max(self.stats.max_command_velocity_ratio, float(ratio))
        return full

    def execute(self, positions: np.ndarray, velocities: np.ndarray, dt: float) -> None:
        """Send a planner trajectory: (60, 12) positions and velocities, waypoint k at (k + 1) * dt."""
        positions = np.asarray(positions, dtype=float)
        times = dt * np.arange(1, len(positions) + 1)
        self.send_trajectory(times, positions, velocities)

    def trajectory_time_left(self) -> float:
        """Seconds until every running trajectory has reached its last waypoint."""
        left = [start + tr.duration - self.time for tr, start in filter(None, self._trajectories)]
        return max([0.0, *left])

    def run_trajectory(
        self, positions: np.ndarray, velocities: np.ndarray, dt: float, settle: float = 0.25
    ) -> ExecutionStats:
        """Clear stats, execute a (60, 12) trajectory to its end plus `settle` seconds; return the stats."""
        self.reset_stats()
        self.execute(positions, velocities, dt)
        self.advance(self.trajectory_time_left() + settle)
        return self.stats

    # ----------------------------------------------------------------- physics
    def step(self, n: int = 1) -> None:
        """Advance n physics steps (commands follow the trajectories). Raises SimulationUnstable."""
        if self._unstable:
            raise SimulationUnstable(f"simulation is unstable ({self._unstable}); call reset()")
        if n <= 0:
            return
        times = self.time + self.timestep * np.arange(1, n + 1)
        q_cmd, v_cmd = self._command_batch(times)
        d = self.data
        ctrl = np.zeros((n, self.model.nu))
        ctrl[:, self._ctrl_pos], ctrl[:, self._ctrl_vel] = q_cmd, v_cmd
        every = self.monitor_interval
        for k in range(n):
            d.ctrl[:] = ctrl[k]
            mujoco.mj_step(self.model, d)
            self._steps_since_stats += 1
            if self._steps_since_stats % every == 0 or k == n - 1:
                self._monitor()

    def advance(self, duration: float) -> None:
        """Advance by `duration` seconds of sim time (rounded to whole physics steps)."""
        self.step(round(duration / self.timestep))

    def _monitor(self) -> None:
        d, s, limits = self.data, self.stats, self.stability
        for warning in _BAD_STATE_WARNINGS:
            if d.warning[warning].number:
                self._fail(f"MuJoCo warning {warning.name} at t={d.time:.3f}")
        if not math.isfinite(float(np.sum(d.qpos)) + float(np.sum(d.qvel))):
            self._fail(f"NaN/Inf in the state at t={d.time:.3f}")
        arm_speed = np.abs(d.qvel[self._v])
        speed = float(arm_speed.max())
        tray_speed = math.sqrt(float(np.dot(d.qvel[self._tray_v], d.qvel[self._tray_v])))
        if speed > limits.max_joint_speed or tray_speed > limits.max_tray_speed:
            self._fail(f"runaway velocity (joint {speed:.1f} rad/s, tray {tray_speed:.1f} m/s) at t={d.time:.3f}")
        s.steps = self._steps_since_stats
        q = d.qpos[self._q]
        excess = float(np.maximum(self._lower - q, q - self._upper).max())
        s.max_position_excess = max(s.max_position_excess, excess)
        s.max_velocity_ratio = max(s.max_velocity_ratio, float((arm_speed * self._inv_vel_limits).max()))
        s.min_tray_z = min(s.min_tray_z, float(d.qpos[self._tray_q.start + 2]))
        s.max_tray_tilt = max(s.max_tray_tilt, math.acos(min(1.0, max(-1.0, float(d.xmat[self.index.tray_body, 8])))))
        if d.ncon:
            contacts = d.contact
            deepest = float(contacts.dist.min())
            if deepest < -limits.max_penetration:
                self._fail(f"penetration {-deepest:.3f} m at t={d.time:.3f}")
            arm_arm, arm_env = classify_contacts(self.index, contacts.geom)
            arm_obstacle, tray_obstacle = obstacle_contacts(self.index, contacts.geom)
            if (arm_arm or arm_env or arm_obstacle or tray_obstacle) and not s.first_collision:
                s.first_collision = self._describe_collision(contacts.geom)
            s.arm_arm_contact |= arm_arm
            s.arm_env_contact |= arm_env
            s.arm_obstacle_contact |= arm_obstacle
            s.tray_obstacle_contact |= tray_obstacle

    def _describe_collision(self, pairs: np.ndarray) -> str:
        for g1, g2 in pairs:
            pair = np.array([[g1, g2]])
            if any(classify_contacts(self.index, pair)) or any(obstacle_contacts(self.index, pair)):
                names = (mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, int(g)) for g in (g1, g2))
                return f"{' / '.join(names)} at t={self.data.time:.3f}"
        return ""

    def _fail(self, reason: str) -> None:
        self._unstable = reason
        raise SimulationUnstable(reason)

    def reset_stats(self) -> None:
        self.stats = ExecutionStats()
        self._steps_since_stats = 0

    # ------------------------------------------------------------------- grasp
    def attach(self, tolerance: float = 0.02) -> GraspResult:
        """Weld both tools to the tray, each at its current relative pose, if both end effectors are within
        `tolerance` (m) of their handles; otherwise attach nothing."""
        distances = np.linalg.norm(self.data.site_xpos[self.index.ee_sites] - self.handle_positions(), axis=1)
        if np.any(distances > tolerance):
            far = [f"{ARMS[i]} {distances[i] * 1000:.1f} mm" for i in range(2) if distances[i] > tolerance]
            return GraspResult(
                False, distances, f"not attached: {', '.join(far)} from handle (> {tolerance * 1000:.0f} mm)"
            )
        d, m = self.data, self.model
        tray_pos, tray_quat = d.xpos[self.index.tray_body], d.xquat[self.index.tray_body]
        for weld, tool in zip(self.index.grasp_welds, self.index.tool_bodies, strict=True):
            tool_inv = np.zeros(4)
            mujoco.mju_negQuat(tool_inv, d.xquat[tool])
            relpos, relquat = np.zeros(3), np.zeros(4)
            mujoco.mju_rotVecQuat(relpos, tray_pos - d.xpos[tool], tool_inv)
            mujoco.mju_mulQuat(relquat, tool_inv, tray_quat)
            m.eq_data[weld, 0:3] = 0.0  # anchor at the tray origin
            m.eq_data[weld, 3:6] = relpos
            m.eq_data[weld, 6:10] = relquat
            d.eq_active[weld] = 1
        return GraspResult(True, distances, "attached")

    def detach(self) -> None:
        """Release both grasps."""
        self.data.eq_active[self.index.grasp_welds] = 0

    @property
    def grasped(self) -> bool:
        return bool(np.all(self.data.eq_active[self.index.grasp_welds]))
