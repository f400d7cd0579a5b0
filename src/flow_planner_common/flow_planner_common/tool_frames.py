"""What the planner's and the expert's checks read off the arms' body poses (forward kinematics' output, torch, any
device): the end-effector sites, and the grip change, i.e. how far the right tool moved from its grasp in the left
tool's frame (both tools hold the tray). One definition for scene safety and the expert's cost."""

from __future__ import annotations

import torch

from flow_planner_common.kinematics import RobotGeometry


def ee_poses_from(pos: torch.Tensor, rot: torch.Tensor, geometry: RobotGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """End-effector sites from body poses (..., 2, 7, 3) / (..., 2, 7, 3, 3): (..., 2, 3) and (..., 2, 3, 3)."""
    tool_p, tool_r = pos[..., -1, :], rot[..., -1, :, :]
    ee_pos = torch.as_tensor(geometry.ee_pos, dtype=pos.dtype, device=pos.device)
    ee_rot = torch.as_tensor(geometry.ee_rot, dtype=pos.dtype, device=pos.device)
    return tool_p + (tool_r @ ee_pos[..., None])[..., 0], tool_r @ ee_rot


def grip_change(pos: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """(..., H) how far (m) the right tool is at waypoints 1..H from where it is at waypoint 0, in the left tool's
    frame, from body poses (..., H + 1, 2, 7, 3) / (..., H + 1, 2, 7, 3, 3)."""
    tool = RobotGeometry.TOOL_BODY
    left, left_rot, right = pos[..., 0, tool, :], rot[..., 0, tool, :, :], pos[..., 1, tool, :]
    grip = ((right - left)[..., :, None] * left_rot).sum(dim=-2)  # left_rot^T (right - left)
    return torch.linalg.vector_norm(grip[..., 1:, :] - grip[..., :1, :], dim=-1)
