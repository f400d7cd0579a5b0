"""Grip-consistent carries by construction (torch, the sphere checker's kinematics): the right arm follows the left.

Both tools hold one tray (welded to it in the physics), so during a carry the right end effector must keep the pose
in the left end effector's frame that it had at the start. `GripFollower.follow` takes candidate carries (any joint
paths) and replaces every waypoint's right arm by the one that does: damped least squares on the right arm's
end-effector Jacobian (each hinge's world axis), a few steps from the candidate's own right arm, all candidates and
waypoints in one batch; the right arm's velocity is the left end effector's twist carried to the right's point,
through the right arm's Jacobian. The CEM expert's search then only decides the left arm's (the tray's) path, and
the planner moves the right arm of its sampled and refined carries the same way before its check (the model learns
the grip only approximately: over a long carry its samples drift by centimetres).
"""

from __future__ import annotations

import numpy as np
import torch

from flow_planner_common.robot import JOINT_POSITION_LIMITS, NUM_ARM_JOINTS, NUM_JOINTS
from flow_planner_common.sphere_checker import SphereChecker
from flow_planner_common.tool_frames import ee_poses_from
from flow_planner_common.tray_ik import ROTATION_WEIGHT

#: Steps end when every right end effector is this close to where the grip puts it (m; rad for the rotation / 10).
TOLERANCE = 1e-4


class GripFollower:
    """The right arm of carry candidates moved so that the grip does not change (see the module docstring)."""

    def __init__(self, checker: SphereChecker, max_iterations: int = 8, damping: float = 1e-6) -> None:
        self.checker = checker
        self.max_iterations, self.damping = max_iterations, damping
        t = checker._tensor
        self._axes = t(checker.geometry.joint_axis[1])  # (6, 3) the right arm's hinge axes in their bodies' frames
        self._weights = t([1.0, 1.0, 1.0] + [ROTATION_WEIGHT] * 3)
        self._lower = t(JOINT_POSITION_LIMITS[NUM_ARM_JOINTS:, 0])
        self._upper = t(JOINT_POSITION_LIMITS[NUM_ARM_JOINTS:, 1])

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
        self, positions: np.ndarray, velocities: np.ndarray, start_positions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates (..., 12) positions and velocities -> the same with the right arm following the left from the
        grip at `start_positions` (12,). The left arm, and the right arm of waypoints already within TOLERANCE, are
        returned unchanged (bit for bit)."""
        shape = np.shape(positions)
        q = self.checker._input(np.reshape(positions, (-1, NUM_JOINTS))).clone()
        dq = self.checker._input(np.reshape(velocities, (-1, NUM_JOINTS))).clone()
        start_p, start_r = self.checker.ee_poses(np.asarray(start_positions, dtype=float)[None])
        rel_p = start_r[0, 0].T @ (start_p[0, 1] - start_p[0, 0])  # the right end effector in the left's frame
        rel_r = start_r[0, 0].T @ start_r[0, 1]
        eye = torch.eye(6, dtype=q.dtype, device=q.device)
        moved = torch.zeros(len(q), dtype=torch.bool, device=q.device)  # rows that took a step (others stay exact)
        for iteration in range(self.max_iterations + 1):
            ee_p, ee_r, jac = self._poses(q)
            target_p = ee_p[:, 0] + ee_r[:, 0] @ rel_p
            target_r = ee_r[:, 0] @ rel_r
            turn = target_r @ ee_r[:, 1].transpose(-1, -2)  # small: the antisymmetric part is the rotation vector
            err_r = 0.5 * torch.stack([turn[:, 2, 1] - turn[:, 1, 2], turn[:, 0, 2] - turn[:, 2, 0],
                                       turn[:, 1, 0] - turn[:, 0, 1]], dim=-1)  # fmt: skip
            err = torch.cat([target_p - ee_p[:, 1], err_r], dim=-1) * self._weights  # (M, 6)
            off = err.abs().amax(dim=-1) > TOLERANCE
            if iteration == self.max_iterations or not bool(off.any()):
                break
            j = jac[:, 1] * self._weights[:, None]
            lam = self.damping + 0.1 * (err * err).sum(dim=-1)
            normal = j @ j.transpose(-1, -2) + lam[:, None, None] * eye
            step = (j.transpose(-1, -2) @ torch.linalg.solve(normal, err[..., None]))[..., 0] * off[:, None]
            q[:, NUM_ARM_JOINTS:] = torch.clamp(q[:, NUM_ARM_JOINTS:] + step, self._lower, self._upper)
            moved |= off
        twist = (jac[:, 0] @ dq[:, :NUM_ARM_JOINTS, None])[..., 0]  # (M, 6): the left end effector's v, w
        want = torch.cat([twist[:, :3] + torch.linalg.cross(twist[:, 3:], target_p - ee_p[:, 0]), twist[:, 3:]], -1)
        j = jac[:, 1]
        normal = j @ j.transpose(-1, -2) + self.damping * eye
        dq[:, NUM_ARM_JOINTS:] = (j.transpose(-1, -2) @ torch.linalg.solve(normal, want[..., None]))[..., 0]
        out_q = np.array(positions, dtype=float).reshape(-1, NUM_JOINTS)
        out_dq = np.array(velocities, dtype=float).reshape(-1, NUM_JOINTS)
        rows = moved.cpu().numpy()
        out_q[rows, NUM_ARM_JOINTS:] = q[moved, NUM_ARM_JOINTS:].double().cpu().numpy()
        out_dq[:, NUM_ARM_JOINTS:] = dq[:, NUM_ARM_JOINTS:].double().cpu().numpy()
        return out_q.reshape(shape), out_dq.reshape(shape)
