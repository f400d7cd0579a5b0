"""Grip-consistent carries by construction (torch, the sphere checker's kinematics): the right arm follows the left.

Both tools hold one tray (welded to it in the physics), so during a carry the right end effector must keep the pose
in the left end effector's frame that it had at the start. `GripFollower.follow` takes candidate carries (any joint
paths) and replaces every waypoint's right arm by the one that does: damped least squares on the right arm's
end-effector Jacobian (each hinge's world axis), a few steps from the candidate's own right arm, all candidates and
waypoints in one batch; the right arm's velocity is the left end effector's twist carried to the right's point,
through the right arm's Jacobian. The CEM expert's search then only decides the left arm's (the tray's) path, and
the planner moves the right arm of its sampled and refined carries the same way before its check (the model learns
the grip only approximately: over a long carry its samples drift by centimetres).

With `level_dt` the same steps also turn the left arm so that the tray keeps the tilt it has at the start (the
direction that is up in the left end effector's frame at the start stays up; the tray is fixed in that frame):
the angular rows of the left arm's Jacobian, the position free. The planner's refinement uses it, since bending the
left arm's wrist tilts the tray (scene_safety's tilt limit).
"""

from __future__ import annotations

import numpy as np
import torch

from flow_planner_common.kinematics import ArmKinematics
from flow_planner_common.robot import JOINT_POSITION_LIMITS, NUM_ARM_JOINTS, NUM_JOINTS
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.threads import split_rows
from flow_planner_common.tool_frames import ee_poses_from
from flow_planner_common.tray_ik import ROTATION_WEIGHT

#: Steps end when every right end effector is this close to where the grip puts it (m; rad for the rotation / 10).
TOLERANCE = 1e-4
#: Leveling (level_dt) applies to candidates whose goal has the start's tilt within this (rad).
GOAL_TILT_TOLERANCE = 1e-3


class GripFollower:
    """The right arm of carry candidates moved so that the grip does not change (see the module docstring)."""

    def __init__(self, checker: SphereChecker, max_iterations: int = 8, damping: float = 1e-6) -> None:
        self.checker = checker
        self.max_iterations, self.damping = max_iterations, damping
        self._compiled = checker.backend == "compiled"  # the compiled steps (grip_kernel) with the checker's kernel
        if self._compiled:
            from flow_planner_common import grip_kernel

            g = checker.geometry
            self._kernel, self._kinematics = grip_kernel, ArmKinematics(g)
            self._ee = (np.ascontiguousarray(g.ee_pos, dtype=float), np.ascontiguousarray(g.ee_rot, dtype=float),
                        np.ascontiguousarray(g.joint_axis, dtype=float))  # fmt: skip
            self._limits = np.ascontiguousarray(JOINT_POSITION_LIMITS, dtype=float)
            self._weight_array = np.array([1.0, 1.0, 1.0] + [ROTATION_WEIGHT] * 3)
            rest = np.zeros((1, 2, NUM_JOINTS))  # compiled (or loaded from numba's cache) here, not in a first plan
            self._follow_compiled(rest, rest, rest[0, 0], level_dt=0.05)
        t = checker._tensor
        self._axes = t(checker.geometry.joint_axis[1])  # (6, 3) the right arm's hinge axes in their bodies' frames
        self._weights = t([1.0, 1.0, 1.0] + [ROTATION_WEIGHT] * 3)
        self._lower = t(JOINT_POSITION_LIMITS[NUM_ARM_JOINTS:, 0])
        self._upper = t(JOINT_POSITION_LIMITS[NUM_ARM_JOINTS:, 1])
        self._lower_left = t(JOINT_POSITION_LIMITS[:NUM_ARM_JOINTS, 0])
        self._upper_left = t(JOINT_POSITION_LIMITS[:NUM_ARM_JOINTS, 1])

    def _poses(self, q: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """End-effector poses (M, 2, 3), (M, 2, 3, 3) and Jacobians (M, 2, 6 rows, 6 joints) of both arms."""
        pos, rot = self.checker.forward_kinematics(q)  # (M, 2, 7, 3), (M, 2, 7, 3, 3)
        ee_p, ee_r = ee_poses_from(pos, rot, self.checker.geometry)
        axes = (rot[:, :, :NUM_ARM_JOINTS] @ self._axes[:, :, None])[..., 0]  # (M, 2, 6, 3) world axes
        lever = ee_p[:, :, None, :] - pos[:, :, :NUM_ARM_JOINTS]
        jac = torch.cat([torch.linalg.cross(axes, lever), axes], dim=-1).transpose(-1, -2)
        return ee_p, ee_r, jac

    @torch.inference_mode()
    def follow(
        self, positions: np.ndarray, velocities: np.ndarray, start_positions: np.ndarray, level_dt: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates (..., 12) positions and velocities -> the same with the right arm following the left from the
        grip at `start_positions` (12,). The left arm, and the right arm of waypoints already within TOLERANCE, are
        returned unchanged (bit for bit). `level_dt`: also level the left arm (see the module docstring) of
        candidates (..., H, 12) whose waypoints are this far apart (s) and whose goal has the start's tilt (within
        GOAL_TILT_TOLERANCE; the others are not leveled): its velocities get the change's time derivative (central
        differences, zero change before the first waypoint; the last waypoint, the goal, ends at rest)."""
        if self._compiled:
            return self._follow_compiled(positions, velocities, start_positions, level_dt)
        shape = np.shape(positions)
        q = self.checker._input(np.reshape(positions, (-1, NUM_JOINTS))).clone()
        dq = self.checker._input(np.reshape(velocities, (-1, NUM_JOINTS))).clone()
        start_p, start_r = self.checker.ee_poses(np.asarray(start_positions, dtype=float)[None])
        rel_p = start_r[0, 0].T @ (start_p[0, 1] - start_p[0, 0])  # the right end effector in the left's frame
        rel_r = start_r[0, 0].T @ start_r[0, 1]
        world_up = q.new_tensor([0.0, 0.0, 1.0])
        up = start_r[0, 0].T @ world_up  # in the left end effector's frame: the direction that is up at the start
        eye = torch.eye(6, dtype=q.dtype, device=q.device)
        moved = torch.zeros(len(q), dtype=torch.bool, device=q.device)  # rows that took a step (others stay exact)
        leveled = torch.zeros_like(moved)
        # Each iteration works on the rows still off (`rows`): a row within the tolerances takes no more steps, and
        # its poses, Jacobians and target, kept in the full-size buffers, stay those of its final joints.
        rows = torch.arange(len(q), device=q.device)
        ee_p_all = q.new_empty((len(q), 2, 3))
        jac_all = q.new_empty((len(q), 2, 6, NUM_ARM_JOINTS))
        target_all = q.new_empty((len(q), 3))
        for iteration in range(self.max_iterations + 1):
            ee_p, ee_r, jac = self._poses(q[rows])
            ee_p_all[rows], jac_all[rows] = ee_p, jac
            tilt_off = torch.zeros(len(rows), dtype=torch.bool, device=q.device)
            if level_dt is not None:  # the rotation that turns the start's up direction back up: (M, 3)
                tilt = torch.linalg.cross(ee_r[:, 0] @ up, world_up.expand(len(rows), 3))
                if iteration == 0:  # only candidates whose goal keeps the start's tilt (the goal is never moved)
                    ends = tilt.view(-1, shape[-2], 3)[:, -1].abs().amax(dim=-1) <= GOAL_TILT_TOLERANCE
                    levelable = ends[:, None].expand(-1, shape[-2]).clone()
                    levelable[:, -1] = False  # the goal itself stays where it is
                    levelable = levelable.reshape(-1)
                tilt_off = (tilt.abs().amax(dim=-1) > TOLERANCE) & levelable[rows]
                if iteration < self.max_iterations and bool(tilt_off.any()):
                    j = jac[:, 0, 3:]  # (R, 3, 6): the left end effector's angular velocity per joint
                    normal = j @ j.transpose(-1, -2) + self.damping * eye[:3, :3]
                    step = (j.transpose(-1, -2) @ torch.linalg.solve(normal, tilt[..., None]))[..., 0]
                    q[rows, :NUM_ARM_JOINTS] = torch.clamp(q[rows, :NUM_ARM_JOINTS] + step * tilt_off[:, None],
                                                           self._lower_left, self._upper_left)  # fmt: skip
                    leveled[rows] = leveled[rows] | tilt_off
            target_p = ee_p[:, 0] + ee_r[:, 0] @ rel_p
            target_all[rows] = target_p
            target_r = ee_r[:, 0] @ rel_r
            turn = target_r @ ee_r[:, 1].transpose(-1, -2)  # small: the antisymmetric part is the rotation vector
            err_r = 0.5 * torch.stack([turn[:, 2, 1] - turn[:, 1, 2], turn[:, 0, 2] - turn[:, 2, 0],
                                       turn[:, 1, 0] - turn[:, 0, 1]], dim=-1)  # fmt: skip
            err = torch.cat([target_p - ee_p[:, 1], err_r], dim=-1) * self._weights  # (R, 6)
            off = err.abs().amax(dim=-1) > TOLERANCE
            if iteration == self.max_iterations or not bool(off.any() or tilt_off.any()):
                break
            j = jac[:, 1] * self._weights[:, None]
            lam = self.damping + 0.1 * (err * err).sum(dim=-1)
            normal = j @ j.transpose(-1, -2) + lam[:, None, None] * eye
            step = (j.transpose(-1, -2) @ torch.linalg.solve(normal, err[..., None]))[..., 0] * off[:, None]
            q[rows, NUM_ARM_JOINTS:] = torch.clamp(q[rows, NUM_ARM_JOINTS:] + step, self._lower, self._upper)
            moved[rows] = moved[rows] | off
            rows = rows[off | tilt_off]
        ee_p, jac, target_p = ee_p_all, jac_all, target_all
        out_q = np.array(positions, dtype=float).reshape(-1, NUM_JOINTS)
        if level_dt is not None and bool(leveled.any()):  # the left arm's velocities: + d/dt of its change
            change = (q[:, :NUM_ARM_JOINTS] - self.checker._input(out_q[:, :NUM_ARM_JOINTS])).view(-1, shape[-2], 6)
            before, after = torch.zeros_like(change[:, :1]), change[:, -1:]
            padded = torch.cat([before, change, after], dim=1)
            rate = (padded[:, 2:] - padded[:, :-2]) / (2.0 * level_dt)
            rate[:, -1] = 0.0  # the goal is not moved and ends at rest
            dq[:, :NUM_ARM_JOINTS] += rate.reshape(-1, NUM_ARM_JOINTS)
        twist = (jac[:, 0] @ dq[:, :NUM_ARM_JOINTS, None])[..., 0]  # (M, 6): the left end effector's v, w
        want = torch.cat([twist[:, :3] + torch.linalg.cross(twist[:, 3:], target_p - ee_p[:, 0]), twist[:, 3:]], -1)
        j = jac[:, 1]
        normal = j @ j.transpose(-1, -2) + self.damping * eye
        dq[:, NUM_ARM_JOINTS:] = (j.transpose(-1, -2) @ torch.linalg.solve(normal, want[..., None]))[..., 0]
        out_dq = np.array(velocities, dtype=float).reshape(-1, NUM_JOINTS)
        rows = moved.cpu().numpy()
        out_q[rows, NUM_ARM_JOINTS:] = q[moved, NUM_ARM_JOINTS:].double().cpu().numpy()
        out_dq[:, NUM_ARM_JOINTS:] = dq[:, NUM_ARM_JOINTS:].double().cpu().numpy()
        if level_dt is not None and bool(leveled.any()):
            rows = leveled.cpu().numpy()
            out_q[rows, :NUM_ARM_JOINTS] = q[leveled, :NUM_ARM_JOINTS].double().cpu().numpy()
            out_dq[:, :NUM_ARM_JOINTS] = dq[:, :NUM_ARM_JOINTS].double().cpu().numpy()
        return out_q.reshape(shape), out_dq.reshape(shape)

    def _follow_compiled(
        self, positions: np.ndarray, velocities: np.ndarray, start_positions: np.ndarray, level_dt: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """follow() by the compiled steps (grip_kernel, float64), split over torch's thread count (split_rows)."""
        shape = np.shape(positions)
        q = np.array(positions, dtype=float).reshape(-1, NUM_JOINTS)
        original_left = q[:, :NUM_ARM_JOINTS].copy()
        dq = np.array(velocities, dtype=float).reshape(-1, NUM_JOINTS)
        start_p, start_r = self._kinematics.ee_poses(np.asarray(start_positions, dtype=float)[None])
        left = start_r[0, 0]
        rel_p, rel_r = left.T @ (start_p[0, 1] - start_p[0, 0]), left.T @ start_r[0, 1]
        up = np.ascontiguousarray(left[2])  # left^T (0, 0, 1): the start's up direction in the left frame
        levelable = np.zeros(len(q), dtype=bool)
        if level_dt is not None:  # only candidates whose goal keeps the start's tilt; the goal itself stays
            horizon = shape[-2]
            _, goal_r = self._kinematics.ee_poses(q.reshape(-1, horizon, NUM_JOINTS)[:, -1])
            v = goal_r[:, 0] @ up
            ends = np.maximum(np.abs(v[:, 0]), np.abs(v[:, 1])) <= GOAL_TILT_TOLERANCE
            levelable = np.repeat(ends[:, None], horizon, axis=1)
            levelable[:, -1] = False
            levelable = levelable.reshape(-1)
        moved, leveled = np.zeros(len(q), dtype=bool), np.zeros(len(q), dtype=bool)
        jac, ee_left, target = np.empty((len(q), 2, 6, NUM_ARM_JOINTS)), np.empty((len(q), 3)), np.empty((len(q), 3))
        geometry, (ee_pos, ee_rot, axes), kernel = self.checker._kernel_geometry, self._ee, self._kernel

        def steps(lo: int, hi: int) -> None:
            kernel.follow_rows(geometry, ee_pos, ee_rot, axes, q[lo:hi], levelable[lo:hi], rel_p, rel_r, up,
                               level_dt is not None, self.max_iterations, self.damping, TOLERANCE,
                               self._weight_array, self._limits, moved[lo:hi], leveled[lo:hi], jac[lo:hi],
                               ee_left[lo:hi], target[lo:hi])  # fmt: skip

        split_rows(steps, len(q))
        if level_dt is not None and leveled.any():  # the left arm's velocities: + d/dt of its change
            change = (q[:, :NUM_ARM_JOINTS] - original_left).reshape(-1, shape[-2], NUM_ARM_JOINTS)
            padded = np.concatenate([np.zeros_like(change[:, :1]), change, change[:, -1:]], axis=1)
            rate = (padded[:, 2:] - padded[:, :-2]) / (2.0 * level_dt)
            rate[:, -1] = 0.0  # the goal is not moved and ends at rest
            dq[:, :NUM_ARM_JOINTS] += rate.reshape(-1, NUM_ARM_JOINTS)
        split_rows(lambda lo, hi: kernel.right_velocities(jac[lo:hi], dq[lo:hi], ee_left[lo:hi], target[lo:hi],
                                                          self.damping), len(q))  # fmt: skip
        return q.reshape(shape), dq.reshape(shape)

