"""Batched collision clearances in torch (CPU or CUDA) from a sphere cover of the arms: the one collision checker.

`SphereChecker.clearance` takes (..., 12) joint positions, a scene's boxes and the tray (resting at a pose, or
carried by both tools at the mean of their poses, exactly as `flow_planner_common.kinematics`) and returns per
configuration the smallest signed distance (m, < 0 = penetration) of each category in `kinematics.CATEGORIES`
order, a (..., 6) tensor, +inf where a category has no pair. One call may also hold several scenes (the planner's
concurrent requests): boxes (G, M, 7) and/or G grasps for positions (G, ..., 12), scene g for positions[g], with
the same numbers as G calls of one scene each. Conservative against the MJCF geoms (what MuJoCo's
collision detection sees): where they are apart the value is at most their distance (by the padding and more),
where they touch it is negative, so "distance > 0" never hides a contact; a penetration's depth is the deepest
sphere's, which can be less than MuJoCo's penetration depth of the whole geom.

The arms are spheres: `robot_spheres.json` (generated from the MJCF by `data_collector_ros.robot_spheres`) covers
each body's collision geoms with a few spheres in the body frame of `RobotGeometry`'s chain; the checker pads their
radii by `padding`. Closed forms: sphere-sphere (arm-arm), sphere-box (the exact box SDF: obstacles, the table, the
tray's boxes), sphere-plane (the floor); the tray's boxes (padded) against the obstacles and the table use the
separating-axis gap over both boxes' face axes (a lower bound of their distance, <= 0 iff they overlap when no edge
axis separates them: exact for a level tray and yaw-only obstacles). Arm-arm takes one batched product of all sphere
pairs and a bound from the smallest (see `_arm_arm`): within a few per cent of the closest pair's distance.

Spheres cover cylinders and boxes badly (the tool box's cover reaches 2 cm beyond its faces, a wrist cylinder's 1 cm
beyond its side), and grasps and slides bring exactly those next to boxes. So against the obstacles and the table
every geom also gets a separating-axis gap of its exact shape (RobotSpheres.geom_*: box + disc + ball, `_geom_gaps`)
and each of its spheres counts the larger of the two lower bounds: the arm-box value is then within the padding of
MuJoCo's distance in the median (it was 1 cm below; test_sphere_checker), at about twice the work. Scenes in the
fixed-size form with a host mask drop their unused boxes first (`_boxes`).

Why torch and this layout: an earlier numpy checker of exact capsule and box distances was no faster than MuJoCo.
Here every intermediate is laid out with the configurations last ((..., C), "structure of arrays"), so each torch
op is one vectorised loop over all configurations; there are no Python loops over configurations or boxes, no host
syncs and no data-dependent shapes, so the same code runs on CUDA without leaving the device (on one CPU thread the
sphere-box tests go a few spheres at a time, `TILE_ELEMENTS`, to stay in cache). float32 by default; `ROUNDING_SLACK`
(added to every robot and tray radius) keeps float32 rounding on the conservative side.

Two backends compute clearance() (`backend`): these torch ops (any device: the path of CUDA, where a batch of
thousands of configurations costs what one does), and on the CPU by default the same bounds compiled with numba
(`flow_planner_common.sphere_kernel`): blocks of 128 configurations vectorised over them, skipping bodies whose
bounding sphere cannot lower a minimum in any of them, in the checker's dtype with the same padded radii. Torch pays
a fixed cost per op and a pass through memory per intermediate; the kernel is 8-10x faster than it on the planner's
batches of a few hundred configurations and on thousands (benchmarks/bench_collision.py). The two agree to rounding
except arm-arm, where the kernel takes the exact closest sphere pair (test_sphere_checker). forward_kinematics and
carried_tray stay torch (SceneSafety's sweep, grip and tilt have their own compiled kernel: motion_kernel).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from flow_planner_common.kinematics import (
    CATEGORIES,
    ArmKinematics,
    RobotGeometry,
    TrayGrasp,
    apply_rotation,
    quat_to_matrix,
    skew,
)
from flow_planner_common.obstacles import BOX_DIM, Box
from flow_planner_common.robot import NUM_ARM_JOINTS, NUM_JOINTS
from flow_planner_common.robot_spheres import RobotSpheres, first_body_table, tray_folding
from flow_planner_common.threads import split_rows
from flow_planner_common.tool_frames import ee_poses_from

#: Added to every robot and tray radius / half size (m) per dtype: float rounding of forward kinematics and distances.
ROUNDING_SLACK: dict[torch.dtype, float] = {torch.float32: 1e-4, torch.float64: 1e-9}
#: Subtracted from squared distances computed as |x|^2 + |y|^2 - 2 x.y, in units of the dtype's machine epsilon:
#: their rounding error for coordinates within 2 m of the world origin (products of up to 16 m^2, summed).
GRAM_ROUNDING = 128.0
#: One CPU thread only: elements per array of the sphere-box tests, a few spheres at a time (fits a 2 MB cache).
TILE_ELEMENTS = 1 << 18
#: clearance() backends: "compiled" (numba, flow_planner_common.sphere_kernel, CPU only), "torch" (any device),
#: "auto" (compiled on the CPU where numba is installed, else torch).
BACKENDS = ("auto", "compiled", "torch")
#: Shortest vector (m) from a box to a geom's centre that gives the geom bound's fourth axis (_geom_gaps).
MIN_AXIS_LENGTH = 1e-6
#: A geom size (m) at most this is none: robot_spheres.json rounds sizes up, so a zero reads 1e-9 there.
NO_SIZE = 1e-6

_ARM_ARM, _ARM_TABLE, _ARM_OBSTACLE, _TRAY_OBSTACLE, _ARM_TRAY, _TRAY_TABLE = range(len(CATEGORIES))


Tensorish = torch.Tensor | np.ndarray | Sequence[float]


def float64_array(values: Tensorish) -> np.ndarray:
    """A float64 numpy array of a tensor (any device) or array-like."""
    if isinstance(values, torch.Tensor):
        return values.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


class SphereChecker:
    """Forward kinematics and conservative clearances of (..., 12) joint tensors (see the module docstring).

    Inputs may be tensors (on any device: they are moved to the checker's, the results moved back) or numpy arrays
    (results on the checker's device); everything is computed in `dtype`."""

    def __init__(
        self,
        geometry: RobotGeometry | None = None,
        spheres: RobotSpheres | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        padding: float = 0.002,
        backend: str = "auto",
    ) -> None:
        self.geometry = g = geometry or RobotGeometry.load()
        self.spheres = sp = spheres or RobotSpheres.load()
        self.device, self.dtype, self.padding = torch.device(device), dtype, float(padding)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "compiled" and self.device.type != "cpu":
            raise ValueError("the compiled backend runs on the CPU only")
        #: "compiled" (numba, sphere_kernel) or "torch": which code computes clearance()
        self.backend = "torch" if backend == "auto" and self.device.type != "cpu" else backend
        if self.backend == "auto":
            self.backend = "compiled" if importlib.util.find_spec("numba") is not None else "torch"
        if not np.allclose(g.tray_rot, np.eye(3)):
            raise ValueError("the sphere checker needs the tray's boxes axis-aligned in the tray frame")
        slack = ROUNDING_SLACK[dtype]
        n_body = NUM_ARM_JOINTS + 1
        self.sphere_count = int(sp.body.shape[1])
        self._bounds = np.concatenate([[0], np.cumsum(np.bincount(sp.body[0], minlength=n_body))])
        radius = sp.radius + self.padding + slack  # (2, S)
        self.radius = self._tensor(radius)
        flat_radius = radius.reshape(-1)  # (2S,): left spheres, then right

        # Forward kinematics with rotations stored transposed (rot_t[arm, col, row, C] = R[row, col]): hinge j turns
        # its body by link_rot @ (I + sin(q) K + (1 - cos(q)) K^2), K the axis' cross-product matrix.
        k = skew(g.joint_axis)  # (2, 6, 3, 3)
        basis = np.stack([np.broadcast_to(np.eye(3), k.shape), k, k @ k], axis=2)  # (2, 6, 3 terms, 3, 3)
        first = g.base_rot[:, None] @ g.link_rot[:, 0, None] @ basis[:, 0]  # (2, 3 terms, 3, 3) world, joint 0
        self._first_rot = self._tensor(first.transpose(1, 0, 3, 2)[..., None])  # (3 terms, 2, 3, 3, 1)
        self._first_pos = self._tensor((g.base_pos + apply_rotation(g.base_rot, g.link_pos[:, 0]))[:, None, :, None])
        # Step j (1..6) turns vectors of body j - 1's frame into the world (one batched product per step): body j's
        # rotation terms (columns of link_rot, link_rot K, link_rot K^2; at the tool its fixed rotation), its
        # offset, the centres of body j - 1's spheres (at the tool step also the tool's, through its fixed pose).
        self._steps: list[torch.Tensor] = []
        for j in range(1, n_body):
            rows = []
            if j < NUM_ARM_JOINTS:
                rows += [(g.link_rot[:, j] @ basis[:, j, term]).transpose(0, 2, 1) for term in range(3)]
                rows.append(g.link_pos[:, j, None])
            else:
                rows += [g.tool_rot.transpose(0, 2, 1), g.tool_pos[:, None]]
            rows.append(sp.center[:, self._bounds[j - 1] : self._bounds[j]])
            if j == NUM_ARM_JOINTS:
                tool = sp.center[:, self._bounds[j] : self._bounds[j + 1]]
                rows.append(g.tool_pos[:, None] + np.einsum("aij,asj->asi", g.tool_rot, tool))
            self._steps.append(self._tensor(np.concatenate(rows, axis=1)))  # (2, K, 3)

        # The table (the last static box, after the scene's obstacles) and the floor plane. A first body that turns
        # about a vertical axis above the table keeps its distance to both: its exact shapes' (RobotGeometry) stand
        # in for its spheres there (a sphere around the stubby shoulder reaches 2.5 cm below it).
        self._table_row = np.concatenate([g.table_center, 2 * g.table_half, [0.0]])  # an obstacle row, float64
        self._table = self._tensor(self._table_row)
        self.first_body_table = first_body_table(g, self.padding + slack)  # m, or None
        skip = np.where((sp.body == 0).reshape(-1) & (self.first_body_table is not None), np.inf, 0.0)
        self._floor = self._tensor(flat_radius[:, None] + g.floor_z - skip[:, None])  # (2S, 1): z minus this
        self._neg_radius = self._tensor(-flat_radius[:, None])  # (2S, 1)
        # Each geom exactly (RobotSpheres.geom_*) for its separating-axis bound against the static boxes (_geom_gaps):
        # round geoms (cylinders, capsules: a box only along their z) with their z axis, boxes with all three. Per
        # group the geoms of both arms: their bodies' rows among the stacked body frames, axes (rows) and centres in
        # the body frame, box half sizes along those axes, disc and (padded) ball radii. The 2K geoms in group order;
        # per sphere the index of its geom there.
        if not np.array_equal(sp.geom_body[0], sp.geom_body[1]):
            raise ValueError("both arms must have the same geoms on the same bodies")
        round_geom = np.all(sp.geom_half[0, :, :2] <= NO_SIZE, axis=1)  # (K,)
        self._geom_groups: list[GeomGroup] = []
        order: list[tuple[int, int]] = []
        for used, axes in ((round_geom, [2]), (~round_geom, [0, 1, 2])):
            pairs = [(arm, int(k)) for arm in range(2) for k in np.flatnonzero(used)]
            if pairs:
                order += pairs
                arms, ks = np.array(pairs).T
                self._geom_groups.append(GeomGroup(
                    rows=torch.as_tensor([arm * n_body + int(sp.geom_body[arm, k]) for arm, k in pairs],
                                         device=self.device),
                    rot_t=self._tensor(sp.geom_rot[arms, ks][:, :, axes].transpose(0, 2, 1)),
                    center=self._tensor(sp.geom_center[arms, ks][:, None]),
                    half=self._tensor(sp.geom_half[arms, ks][:, axes]),
                    disc=self._tensor(sp.geom_disc[arms, ks]),
                    ball=self._tensor(sp.geom_ball[arms, ks] + self.padding + slack),
                    has_disc=bool(np.any(sp.geom_disc[arms, ks] > NO_SIZE)),
                ))  # fmt: skip
        position = {pair: i for i, pair in enumerate(order)}
        self._sphere_geom = torch.as_tensor([position[(arm, int(k))] for arm in range(2) for k in sp.geom[arm]],
                                            device=self.device)  # fmt: skip
        self._table_offset = self._tensor(skip[:, None] - flat_radius[:, None])  # (2S, 1)

        # Tray boxes, padded; folded across the tray's x and y planes where they are mirror images.
        tray_half = g.tray_half + self.padding + slack  # (T, 3)
        fold, keep = tray_folding(g.tray_center, tray_half, g.tray_handle)
        self._fold = [axis for axis in range(3) if fold[axis]]
        self._fold_center = self._tensor(g.tray_center[keep].T[:, :, None, None])  # (3, Tf, 1, 1)
        self._fold_half = self._tensor(tray_half[keep].T[:, :, None, None])
        tool = (sp.body == RobotGeometry.TOOL_BODY).reshape(-1)  # (2S,)
        # The tools hold the tray (welded to it in the physics): their spheres against the tray are the grasp, not a
        # collision (the right tool's drift from its grasp is the planner's grip check). At a real grasp the tool's
        # cover reads the tray base a few centimetres closer than the tool box is.
        excluded = np.broadcast_to(tool[None, :], (int(np.count_nonzero(keep)), tool.size))
        self._tray_offset = self._tensor(np.where(excluded, np.inf, -flat_radius[None, :])[..., None])  # (Tf, 2S, 1)
        self._tray_center = self._tensor(g.tray_center)  # (T, 3) unfolded, for the box-box gaps
        self._tray_half = self._tensor(tray_half)

        # Arm-arm (see _arm_arm): per pair h = (d^2 - (r_i + r_j)^2) / (4 sqrt(r_i r_j)), one batched product per
        # configuration of A_i = u_i [x_i, |x_i|^2 - r_i^2, 1, r_i] and B_j = u_j [-2 y_j, 1, |y_j|^2 - r_j^2, -2 r_j],
        # u = 1 / (2 sqrt r); kappa = the largest (r_i + r_j) / (2 sqrt(r_i r_j)) >= 1; the smallest radii sum.
        self._scale = self._tensor(1.0 / (2.0 * np.sqrt(radius)))[..., None]  # (2, S, 1)
        self._radius_sq = self._tensor(radius**2)[..., None]  # (2, S, 1)
        pair_sum = radius[0][:, None] + radius[1][None, :]
        self._kappa = float((pair_sum / (2.0 * np.sqrt(radius[0][:, None] * radius[1][None, :]))).max())
        self._least_sum = float(pair_sum.min())
        scale = 1.0 / (4.0 * float(np.sqrt(radius[0].min() * radius[1].min())))
        self._gram_eps = GRAM_ROUNDING * float(torch.finfo(dtype).eps) * scale  # the product's rounding, in h
        self._kernel = None
        if self.backend == "compiled":
            from flow_planner_common import sphere_kernel

            self._kernel = sphere_kernel
            #: the robot for the compiled forward kinematics of the follower and SceneSafety (float64), and for
            #: clearance() (in the checker's dtype: float32 lanes are twice as many per SIMD instruction)
            geometry = functools.partial(sphere_kernel.kernel_geometry, g, sp, self.padding + slack,
                                         self.first_body_table, MIN_AXIS_LENGTH, NO_SIZE)  # fmt: skip
            self._numpy_dtype = torch.empty((), dtype=dtype).numpy().dtype.type
            self._kernel_geometry = geometry()
            self._clearance_geometry = (self._kernel_geometry if self._numpy_dtype is np.float64
                                        else geometry(dtype=self._numpy_dtype))  # fmt: skip
            # compiled (or loaded from numba's cache) here, not in a caller's first timed call
            self.clearance(np.zeros((1, NUM_JOINTS)), tray_pose=[0.5, 0.0, 0.76, 1.0, 0.0, 0.0, 0.0])

    # ------------------------------------------------------------------ conversions
    def _tensor(self, array: np.ndarray | Sequence[float]) -> torch.Tensor:
        return torch.as_tensor(np.array(array, dtype=np.float64), dtype=self.dtype, device=self.device)

    def _input(self, values: Tensorish) -> torch.Tensor:
        if isinstance(values, torch.Tensor):
            return values.to(device=self.device, dtype=self.dtype)
        return self._tensor(values)

    def _configurations(self, positions: Tensorish) -> tuple[torch.Tensor, tuple[int, ...], torch.device]:
        device = positions.device if isinstance(positions, torch.Tensor) else self.device
        q = self._input(positions)
        if q.shape[-1] != NUM_JOINTS:
            raise ValueError(f"expected (..., {NUM_JOINTS}) joint positions, got {tuple(q.shape)}")
        return q.reshape(-1, NUM_JOINTS), tuple(q.shape[:-1]), device

    # ------------------------------------------------------------------ kinematics
    def _chain(self, q: torch.Tensor, keep_bodies: bool) -> tuple[torch.Tensor, list, list]:
        """Forward kinematics of q (C, 12), configurations last: the sphere centres in homogeneous coordinates
        (4, 2S, C) (x, y, z, 1; left spheres, then right) and the transposed rotations (2, 3, 3, C) and positions
        (2, 1, 3, C|1) of every body with keep_bodies, else of the first body and the tools."""
        n, count = q.shape[0], self.sphere_count
        qt = q.t().contiguous().view(2, NUM_ARM_JOINTS, 1, 1, n)
        sin, one_cos = torch.sin(qt), torch.cos(qt).neg_().add_(1.0)
        a, b, c = self._first_rot
        rot = torch.addcmul(torch.addcmul(a, sin[:, 0], b), one_cos[:, 0], c)  # (2, 3, 3, C)
        pos = self._first_pos  # (2, 1, 3, 1)
        centres = torch.empty((4, 2 * count, n), dtype=self.dtype, device=self.device)
        centres[3] = 1.0
        spheres = centres[:3].view(3, 2, count, n).permute(1, 2, 0, 3)  # (2, S, 3, C) view
        rots, poss = [rot], [pos]
        for j, step in enumerate(self._steps, start=1):
            out = torch.bmm(step, rot.reshape(2, 3, 3 * n)).view(2, -1, 3, n)  # rot @ each row of step
            lo, hi = self._bounds[j - 1], self._bounds[j]
            if j < NUM_ARM_JOINTS:
                rot = torch.addcmul(torch.addcmul(out[:, 0:3], sin[:, j], out[:, 3:6]), one_cos[:, j], out[:, 6:9])
                first = 10
            else:
                rot, first = out[:, 0:3], 4
            torch.add(out[:, first : first + hi - lo], pos, out=spheres[:, lo:hi])
            if j == NUM_ARM_JOINTS:
                torch.add(out[:, first + hi - lo :], pos, out=spheres[:, hi:])
            pos = out[:, first - 1 : first] + pos
            if keep_bodies or j == NUM_ARM_JOINTS:
                rots.append(rot)
                poss.append(pos)
        return centres, rots, poss

    def forward_kinematics(self, positions: Tensorish) -> tuple[torch.Tensor, torch.Tensor]:
        """World poses of the 7 bodies per arm (6 jointed + tool): (..., 2, 7, 3) positions, (..., 2, 7, 3, 3)."""
        q, batch, device = self._configurations(positions)
        _, rots, poss = self._chain(q, keep_bodies=True)
        pos = torch.cat([p.expand(2, 1, 3, q.shape[0]) for p in poss], dim=1).permute(3, 0, 1, 2)  # (C, 2, 7, 3)
        rot = torch.stack(rots, dim=1).permute(4, 0, 1, 3, 2)  # (C, 2, 7, 3, 3)
        return pos.reshape(*batch, 2, -1, 3).to(device), rot.reshape(*batch, 2, -1, 3, 3).to(device)

    def ee_poses(self, positions: Tensorish) -> tuple[torch.Tensor, torch.Tensor]:
        """End-effector sites: (..., 2, 3) positions and (..., 2, 3, 3) rotations."""
        return ee_poses_from(*self.forward_kinematics(positions), self.geometry)

    def grasp_from_start(self, start_positions: Tensorish, tray_pose: Tensorish) -> TrayGrasp:
        """The carry's grasp: the tray pose (x y z qw qx qy qz) relative to the left and to the right tool at the
        start state (float64, from the numpy forward kinematics of the same chain, kinematics.ArmKinematics)."""
        start, pose = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=float)
                       for v in (start_positions, tray_pose))  # fmt: skip
        return ArmKinematics(self.geometry).grasp_from_start(start, pose)

    @staticmethod
    def carried_tray(
        pos: torch.Tensor, rot: torch.Tensor, grasp: TrayGrasp | Sequence[TrayGrasp]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Carried tray body poses from forward_kinematics' output: (..., 3) positions and (..., 3, 3) rotations;
        with a two-tool grasp the mean of the poses each tool's grasp gives the tray (kinematics.mean_rotation),
        else the left tool's. A sequence of G grasps: grasp g for pos[g] (pos (G, ..., 2, 7, 3))."""
        poses = []
        for arm, (offset, turn) in enumerate(grasp_tensors(grasp, pos.dtype, pos.device)):  # (G, 3), (G, 3, 3)
            tool_p, tool_r = pos[..., arm, -1, :], rot[..., arm, -1, :, :]
            if isinstance(grasp, TrayGrasp):
                offset, turn = offset[0], turn[0]
            else:  # one grasp per leading index
                ones = (1,) * (tool_p.dim() - 2)
                offset, turn = offset.view(-1, *ones, 3), turn.view(-1, *ones, 3, 3)
            poses.append((tool_p + (tool_r @ offset[..., None])[..., 0], tool_r @ turn))
        if len(poses) == 1:
            return poses[0]
        (left_p, left_r), (right_p, right_r) = poses
        m = left_r + right_r
        return 0.5 * (left_p + right_p), _mean_rotation(m[..., :, 0], m[..., :, 1], m[..., :, 2], dim=-1)

    def sphere_centers(self, pos: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
        """World centres (..., 2, S, 3) of the spheres from forward_kinematics' output."""
        body = torch.as_tensor(self.spheres.body, device=pos.device)  # (2, S)
        arm = torch.arange(2, device=pos.device)[:, None]
        local = torch.as_tensor(self.spheres.center, dtype=pos.dtype, device=pos.device)  # (2, S, 3)
        return pos[..., arm, body, :] + (rot[..., arm, body, :, :] @ local[..., None])[..., 0]

    # ------------------------------------------------------------------ clearance
    def clearance(
        self,
        positions: Tensorish,
        obstacles: Tensorish | Sequence[Box] = (),
        obstacle_mask: Tensorish | None = None,
        tray_pose: Tensorish | None = None,
        grasp: TrayGrasp | Sequence[TrayGrasp] | None = None,
    ) -> torch.Tensor:
        """(..., 6) clearances (m) of (..., 12) configurations in kinematics.CATEGORIES order.

        obstacles: boxes, or an (M, 7) array (centre, full size, yaw) with an optional (M,) mask. The tray: resting
        at `tray_pose` (x y z qw qx qy qz), carried with `grasp` (by both tools: the mean of their poses, or rigidly
        with the left tool when the grasp has no right part: TrayGrasp), or absent.

        Per-scene batches (one call for several scenes): obstacles (G, M, 7) with a (G, M) mask and/or a sequence
        of G grasps (all two-tool or all left-only) check positions (G, ..., 12), scene g for positions[g]."""
        if tray_pose is not None and grasp is not None:
            raise ValueError("give tray_pose (resting tray) or grasp (carried tray), not both")
        if self._kernel is not None:
            return self._compiled_clearance(positions, obstacles, obstacle_mask, tray_pose, grasp)
        q, batch, device = self._configurations(positions)
        n = q.shape[0]
        boxes, box_offset = self._boxes(obstacles, obstacle_mask)  # (G|1, B, 7) with the table last, (G|1, B, 1)
        parts = None if grasp is None else grasp_tensors(grasp, self.dtype, self.device)  # per tool: (G|1, ...)
        _scene_count(batch, boxes.shape[0], 1 if parts is None else parts[0][0].shape[0])
        centres, rots, poss = self._chain(q, keep_bodies=True)  # (4, 2S, C)
        rot, centre, half = _box_frames(boxes)
        inf = torch.full((n,), math.inf, dtype=self.dtype, device=self.device)

        geom_gaps = self._geom_gaps(rots, poss, rot, centre, half)  # (G, B, 2K, C / G)
        per_box = self._sphere_box(centres, rot, centre, half, geom_gaps).add_(box_offset)
        per_box = _per_configuration(per_box, n)  # (B, C)
        table = torch.minimum(per_box[-1], (centres[2] - self._floor).amin(dim=0))
        if self.first_body_table is not None:
            table.clamp_max_(self.first_body_table)
        multiple = boxes.shape[1] > 1
        values = [self._arm_arm(centres), table, per_box[:-1].amin(dim=0) if multiple else inf, inf, inf, inf]
        if tray_pose is not None or parts is not None:
            if parts is not None:  # by both tools (the mean of their poses), or rigidly with the left one
                tray_rt, tray_p = self._held_tray(rots[-1], poss[-1][:, 0], parts)
            else:
                pose = self._input(tray_pose)
                count = 1 if boxes.shape[0] == 1 else n  # one pose, repeated per configuration for several scenes
                tray_rt = _quat_to_matrix(pose[3:7]).t()[..., None].expand(3, 3, count)  # (3, 3, 1|C)
                tray_p = pose[:3, None].expand(3, count)  # (3, 1|C)
            values[_ARM_TRAY] = self._arm_tray(centres, tray_rt, tray_p)
            gaps = self._tray_boxes(tray_rt, tray_p, rot, centre, half).add_(box_offset)  # (G|1, B, C|1)
            gaps = _per_configuration(gaps, n)  # (B, C)
            values[_TRAY_TABLE] = gaps[-1]
            if multiple:
                values[_TRAY_OBSTACLE] = gaps[:-1].amin(dim=0)
        return torch.stack(values, dim=-1).reshape(*batch, len(CATEGORIES)).to(device)

    def _compiled_clearance(
        self,
        positions: Tensorish,
        obstacles: Tensorish | Sequence[Box],
        obstacle_mask: Tensorish | None,
        tray_pose: Tensorish | None,
        grasp: TrayGrasp | Sequence[TrayGrasp] | None,
    ) -> torch.Tensor:
        """clearance() by the compiled kernel (sphere_kernel): in the checker's dtype (the joint angles' sines and
        cosines from float64), split over torch's thread count (split_rows)."""
        kernel = self._kernel
        device = positions.device if isinstance(positions, torch.Tensor) else self.device
        q = float64_array(positions)
        if q.shape[-1] != NUM_JOINTS:
            raise ValueError(f"expected (..., {NUM_JOINTS}) joint positions, got {q.shape}")
        batch = q.shape[:-1]
        q = np.ascontiguousarray(q.reshape(-1, NUM_JOINTS))
        box_rt, centre, half, used = self._kernel_boxes(obstacles, obstacle_mask)
        dtype = self._numpy_dtype
        mode, tray_rot, tray_pos = kernel.NO_TRAY, np.eye(3, dtype=dtype), np.zeros(3, dtype=dtype)
        offsets, turns = kernel_grasp(grasp, dtype)
        if grasp is not None:
            mode = kernel.CARRIED_TRAY
        elif tray_pose is not None:
            pose = float64_array(tray_pose).reshape(-1)
            mode, tray_pos = kernel.RESTING_TRAY, np.ascontiguousarray(pose[:3], dtype=dtype)
            tray_rot = np.ascontiguousarray(quat_to_matrix(pose[3:7]), dtype=dtype)
        groups = _scene_count(tuple(batch), used.shape[0], offsets.shape[0])
        n = q.shape[0]
        out = np.empty((n, len(CATEGORIES)), dtype=dtype)
        geometry, per = self._clearance_geometry, max(n // groups, 1)
        split_rows(lambda lo, hi: kernel.clearances(geometry, q, lo, hi, per, box_rt, centre, half, used, mode,
                                                    tray_rot, tray_pos, offsets, turns, out), n)  # fmt: skip
        return torch.from_numpy(out).to(self.dtype).reshape(*batch, len(CATEGORIES)).to(device)

    def _kernel_boxes(
        self, obstacles: Tensorish | Sequence[Box], mask: Tensorish | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """_boxes as the compiled kernel reads them, in numpy in the checker's dtype (no torch op: a planner's call is a
        few hundred configurations): per scene (G = 1 unless obstacles are (G, M, 7)) the boxes' axes as rows
        (G, M + 1, 3, 3), centres and half sizes (G, M + 1, 3) and whether each is used (G, M + 1); the table last."""
        if len(obstacles) and isinstance(obstacles[0], Box):
            obstacles = [b.as_array() for b in obstacles]
        array = float64_array(obstacles)
        array = array if array.ndim == 3 else array.reshape(1, -1, BOX_DIM)
        if array.shape[-1] != BOX_DIM:
            raise ValueError(f"expected (M, {BOX_DIM}) or (G, M, {BOX_DIM}) obstacles, got {tuple(array.shape)}")
        groups, count = array.shape[:2]
        used = np.ones((groups, count + 1), dtype=bool)
        if mask is not None:
            flags = float64_array(mask) != 0.0
            used[:, :count] = flags.reshape(groups if flags.ndim > 1 else 1, count)
        boxes = np.concatenate([array, np.broadcast_to(self._table_row, (groups, 1, BOX_DIM))], axis=1)
        cos, sin = np.cos(boxes[..., 6]), np.sin(boxes[..., 6])
        box_rt = np.zeros((groups, count + 1, 3, 3), dtype=self._numpy_dtype)  # rows: the box's axes in the world
        box_rt[..., 0, 0], box_rt[..., 0, 1], box_rt[..., 1, 0], box_rt[..., 1, 1] = cos, sin, -sin, cos
        box_rt[..., 2, 2] = 1.0
        centre = np.ascontiguousarray(boxes[..., 0:3], dtype=self._numpy_dtype)
        half = np.ascontiguousarray(0.5 * boxes[..., 3:6], dtype=self._numpy_dtype)
        return box_rt, centre, half, used

    def _held_tray(
        self, tool_rt: torch.Tensor, tool_p: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The carried tray's transposed rotation (3, 3, C) and position (3, C) from the tools' (2, 3, 3, C)
        transposed rotations and (2, 3, C) positions and grasp_tensors' parts (G|1 scenes, C / G configurations
        each): the mean of the poses both tools give it (carried_tray), or the left tool's."""
        n = tool_rt.shape[-1]
        held = []
        for arm, (offset, turn) in enumerate(parts):  # the tray's (p, (R_tool G)^T) from this tool
            groups = offset.shape[0]
            rt = tool_rt[arm].reshape(3, 3, groups, n // groups)
            position = tool_p[arm] + (rt * offset.t()[:, None, :, None]).sum(dim=0).reshape(3, n)
            held.append((position, torch.einsum("gji,jkgc->ikgc", turn, rt).reshape(3, 3, n)))
        tray_p, tray_rt = held[0]
        if len(held) == 2:
            tray_p = 0.5 * (tray_p + held[1][0])
            mean_t = tray_rt + held[1][1]  # (R_left G_left + R_right G_right)^T: its rows are the columns
            tray_rt = _mean_rotation(mean_t[0], mean_t[1], mean_t[2], dim=0)  # rows: R's columns
        return tray_rt, tray_p

    def _boxes(self, obstacles: Tensorish | Sequence[Box], mask: Tensorish | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, M + 1, 7) boxes per scene (G = 1 unless obstacles are (G, M, 7)), the table last, and (G, M + 1, 1)
        offsets: +inf for masked-out boxes (replaced by the table so that their numbers stay finite), else 0. One
        scene with a mask on the host (numpy, a CPU tensor) keeps only its used boxes: M is then their number (the
        same clearances, less work for the common scene of one or two boxes in the fixed-size form)."""
        if len(obstacles) and isinstance(obstacles[0], Box):
            obstacles = np.array([b.as_array() for b in obstacles])
        array = self._input(obstacles)
        array = array if array.dim() == 3 else array.reshape(1, -1, BOX_DIM)
        if array.shape[-1] != BOX_DIM:
            raise ValueError(f"expected (M, {BOX_DIM}) or (G, M, {BOX_DIM}) obstacles, got {tuple(array.shape)}")
        on_host = isinstance(mask, np.ndarray) or (isinstance(mask, torch.Tensor) and mask.device.type == "cpu")
        if on_host and array.shape[0] == 1 and int(np.asarray(mask).size) == array.shape[1]:
            keep = np.flatnonzero(np.asarray(mask, dtype=bool).reshape(-1))
            array, mask = array[:, torch.as_tensor(keep, device=array.device)], None
        groups, count = array.shape[:2]
        table = self._table.expand(groups, 1, BOX_DIM)
        zero = torch.zeros((1, 1, 1), dtype=self.dtype, device=self.device)
        if mask is None:
            return torch.cat([array, table], dim=1), zero.expand(groups, count + 1, 1)
        used = torch.as_tensor(mask, device=self.device).bool()
        used = used.reshape(groups if used.dim() > 1 else 1, count, 1)
        offset = torch.cat([torch.where(used, zero, math.inf).expand(groups, count, 1), zero.expand(groups, 1, 1)], 1)
        return torch.cat([torch.where(used, array, table), table], dim=1), offset

    def _geom_gaps(
        self, rots: list[torch.Tensor], poss: list[torch.Tensor], rot: torch.Tensor, centre: torch.Tensor,
        half: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """(G, B, 2K, C / G) separating-axis gap of each arm geom (exactly: box + disc + ball, RobotSpheres.geom_*) to
        each static box of G scenes (frames (G, B, ...), as _sphere_box), from every body's transposed rotations
        (2, 3, 3, C) and positions (2, 1, 3, C|1) (_chain with keep_bodies): a lower bound of their distance, <= 0
        where they overlap.

        Along a unit axis a the geom reaches sum_m h_m |a.g_m| + disc sqrt(1 - (a.g_z)^2) + ball from its centre, the
        box sum_j half_j |a.e_j|; where their centres are farther apart along a, the rest is a gap between them. The
        gap is the largest over four axes: the box's three and the one from the box's point closest to the geom's
        centre to that centre (for a round geom, its part across the geom's axis), nearly the distance of a geom
        beside a box's edge or corner, where the box's own axes fall short."""
        groups, boxes, n = rot.shape[0], rot.shape[1], rots[-1].shape[-1]
        per = n // groups
        rot_t = rot.transpose(-1, -2)  # (G, B, 3 box axes j, 3 world)
        weight = torch.cat([rot_t, -torch.matmul(rot_t, centre[..., None])], dim=-1).reshape(groups, -1, 4)
        box_half = half[:, :, :, None, None]  # (G, B, 3 j, 1, 1)
        bodies = len(rots)
        all_rt = torch.stack(rots, dim=1).view(2 * bodies, 3, 3 * n)  # (arm, body) flattened
        all_p = torch.stack([p.expand(2, 1, 3, n) for p in poss], dim=1).view(2 * bodies, 3, n)
        parts = []
        for geoms in self._geom_groups:
            count, axes_n = len(geoms.rows), geoms.half.shape[1]
            body_rt = all_rt.index_select(0, geoms.rows)  # (k, 3, 3 C): the geoms' bodies
            body_p = all_p.index_select(0, geoms.rows)  # (k, 3, C)
            axes = torch.bmm(geoms.rot_t, body_rt).view(count, axes_n, 3, groups, per)  # world, (k, m, 3)
            where = torch.bmm(geoms.center, body_rt).view(count, 3, n).add_(body_p)  # (k, 3, C) world
            # per scene: centres (G, 4, k P) homogeneous, axes (G, 3, m k P); in every box's frame by one product each
            ones = torch.ones((1, 1, 1), dtype=self.dtype, device=self.device).expand(count, 1, n)
            points = torch.cat([where, ones], dim=1).view(count, 4, groups, per).permute(2, 1, 0, 3)
            local = torch.bmm(weight, points.reshape(groups, 4, -1)).view(groups, boxes, 3, count, per)
            axes = axes.permute(3, 2, 1, 0, 4).reshape(groups, 3, -1)
            cos = torch.bmm(weight[..., :3], axes).view(groups, boxes, 3, axes_n, count, per)  # e_j . g_m
            size = geoms.half.t()[:, :, None]  # (m, k, 1)
            disc, ball = geoms.disc[:, None], geoms.ball[:, None]  # (k, 1)
            has_disc = geoms.has_disc
            # along box axis j: |centre_j| - half_j - (sum_m h_m |cos_jm| + disc sqrt(1 - cos_jz^2) + ball)
            abs_cos = cos.abs()
            work = abs_cos[:, :, :, 0].mul(size[0])  # (G, B, 3, k, P), reused below
            for m in range(1, axes_n):
                work.addcmul_(abs_cos[:, :, :, m], size[m])
            work.add_(ball).add_(box_half)
            if has_disc:
                across = cos[:, :, :, -1].square().neg_().add_(1.0).clamp_min_(0.0).sqrt_()
                work.addcmul_(disc, across)
            best = local.abs().sub_(work).amax(dim=2)  # (G, B, k, P)
            # along a = the box's closest point to the geom's centre -> that centre (round: across the geom's axis)
            toward = torch.clamp(local, min=-box_half, max=box_half)
            toward = torch.sub(local, toward, out=toward)  # (G, B, 3, k, P)
            if axes_n == 1:
                axis = cos[:, :, :, 0]
                toward.addcmul_(axis, torch.mul(toward, axis, out=work).sum(dim=2, keepdim=True), value=-1.0)
            length = torch.mul(toward, toward, out=work).sum(dim=2).sqrt_()  # (G, B, k, P)
            # no such axis where the centre is in the box (or the line runs along a round geom's axis): a shorter
            # vector would shrink a penetration's depth too, and the endpoint rule reads depths
            undefined = length < MIN_AXIS_LENGTH
            unit = toward.div_(length.clamp_min_(MIN_AXIS_LENGTH)[:, :, None])
            gap = torch.mul(unit, local, out=work).sum(dim=2).abs_()
            gap.sub_(torch.abs(unit, out=work).mul_(box_half).sum(dim=2)).sub_(ball)
            if axes_n == 1:  # a round geom across its axis: the disc's radius
                if has_disc:
                    gap.sub_(disc)
            else:  # sum_m h_m |a . g_m| + disc sqrt(1 - (a . g_z)^2)
                turned = (unit[:, :, :, None] * cos).sum(dim=2)  # (G, B, m, k, P)
                gap.sub_((turned.abs() * size).sum(dim=2))
                if has_disc:
                    gap.sub_(disc * (1.0 - turned[:, :, -1].square()).clamp_min_(0.0).sqrt_())
            parts.append(torch.maximum(best, gap.masked_fill_(undefined, -math.inf), out=best))
        return torch.cat(parts, dim=2)

    def _sphere_box(
        self, centres: torch.Tensor, rot: torch.Tensor, centre: torch.Tensor, half: torch.Tensor,
        geom_gaps: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """(G, B, C / G) smallest signed distance of the spheres (4, 2S, C) to each box of G scenes (frames (G, B,
        ...); configurations g C / G to (g + 1) C / G see scene g): the exact box SDF minus the radius, or the
        separating-axis gap of the geom the sphere covers where larger (`geom_gaps` (G, B, 2K, C / G), _geom_gaps):
        over a geom's spheres the smallest of these is the larger of the two bounds of that geom's distance."""
        groups, boxes = rot.shape[:2]
        n = centres.shape[-1]
        per = n // groups
        axes = rot.transpose(-1, -2).transpose(1, 2)  # (G, 3, B, 3): axis k of box b
        shift = -(axes * centre[:, None]).sum(dim=-1, keepdim=True)  # (G, 3, B, 1)
        weight = torch.cat([axes, shift], dim=-1).reshape(groups, 3 * boxes, 4)  # local_k = axis_k . (x - c)
        half = half.transpose(1, 2).reshape(groups, 3 * boxes, 1)
        offset = torch.cat([self._neg_radius[None].expand(boxes - 1, -1, -1), self._table_offset[None]])  # (B, 2S, 1)
        best = None
        for part in self._tiles(3 * boxes * n):
            spheres = centres[:, part].reshape(4, -1, groups, per).permute(2, 0, 1, 3).reshape(groups, 4, -1)
            local = torch.matmul(weight, spheres)  # (G, 3B, s C / G)
            sdf = _box_sdf(local.abs_().sub_(half).view(groups, 3, -1)).view(groups, boxes, -1, per)
            sdf = torch.maximum(sdf.add_(offset[:, part]), geom_gaps[:, :, self._sphere_geom[part]], out=sdf)
            least = sdf.amin(dim=2)
            best = least if best is None else torch.minimum(best, least, out=best)
        return best

    def _tiles(self, elements_per_sphere: int) -> list[slice]:
        """Slices of the 2S spheres, a few at a time on one CPU thread (_slices)."""
        return self._slices(2 * self.sphere_count, elements_per_sphere)

    def _slices(self, total: int, elements_each: int) -> list[slice]:
        """Slices of `total` items: on one CPU thread such that one slice's arrays fit in its cache (TILE_ELEMENTS),
        else all at once (several threads split each op already: tiles measured slower there)."""
        size = total
        if self.device.type == "cpu" and torch.get_num_threads() == 1:
            size = max(1, min(total, TILE_ELEMENTS // elements_each))
        return [slice(lo, min(lo + size, total)) for lo in range(0, total, size)]

    def _arm_arm(self, centres: torch.Tensor) -> torch.Tensor:
        """(C,) smallest distance between the arms' spheres, from the smallest h over all pairs (one batched product).

        Per pair, with d the centres' distance, s = r_i + r_j and k = s / (2 sqrt(r_i r_j)) in [1, kappa]:
        h = k (d^2 - s^2) / (2 s), and the pair's distance d - s = 2 (h / k) / (1 + sqrt(1 + 2 (h / k) / s)), increasing
        in h / k and, for h >= 0, decreasing in s. So every pair is at least g(h_min / kappa) apart when h_min >= 0 (and
        g(h_min) when < 0), g(x) = 2 x / (1 + sqrt(max(0, 1 + 2 x / s_min))): within a few % of the closest pair's
        distance for gaps of centimetres (k <= 1.06 here), more negative than it for penetrations."""
        count = self.sphere_count
        left, right = centres[:3, :count], centres[:3, count:]  # (3, S, C)
        u_left, u_right = self._scale[0], self._scale[1]  # (S, 1)
        ones = u_left.expand(1, count, centres.shape[-1])
        left_sq = (left * left).sum(dim=0, keepdim=True).sub_(self._radius_sq[0]).mul_(u_left)
        right_sq = (right * right).sum(dim=0, keepdim=True).sub_(self._radius_sq[1]).mul_(u_right)
        r_left = (self.radius[0, :, None] * u_left).expand(1, count, centres.shape[-1])
        r_right = (self.radius[1, :, None] * u_right * -2.0).expand(1, count, centres.shape[-1])
        a = torch.cat([left * u_left, left_sq, ones, r_left]).permute(2, 1, 0).contiguous()  # (C, S, 6)
        b = torch.cat([right * (u_right * -2.0), u_right.expand_as(ones), right_sq, r_right]).permute(2, 0, 1)
        b = b.contiguous()
        h = torch.empty(a.shape[0], dtype=self.dtype, device=self.device)  # (C,), a few configurations at a time
        for part in self._slices(a.shape[0], count * count):
            torch.amin(torch.bmm(a[part], b[part]).view(-1, count * count), dim=1, out=h[part])
        h.sub_(self._gram_eps)
        x = torch.where(h >= 0.0, h / self._kappa, h)
        root = (2.0 / self._least_sum * x).add_(1.0).clamp_min_(0.0).sqrt_()
        return (2.0 * x).div_(root.add_(1.0))

    def _arm_tray(self, centres: torch.Tensor, tray_rt: torch.Tensor, tray_p: torch.Tensor) -> torch.Tensor:
        """(C,) smallest distance of the arm spheres to the tray's boxes (the tools' spheres excluded: the grasp)."""
        n, boxes = centres.shape[-1], self._fold_center.shape[1]
        best = None
        for part in self._tiles(9 * boxes * n):
            rel = centres[:3, part] - tray_p[:, None, :]  # (3, s, C)
            # in the tray frame: local_k = sum_i R[i, k] rel_i = sum_i rt[k, i] rel_i
            local = rel[0] * tray_rt[:, 0, None, :]
            local = torch.addcmul(local, rel[1], tray_rt[:, 1, None, :])
            local = torch.addcmul(local, rel[2], tray_rt[:, 2, None, :])  # (3, s, C)
            for axis in self._fold:  # mirror-image boxes: distances from |coordinate|
                local[axis].abs_()
            excess = torch.empty((3, boxes, *local.shape[1:]), dtype=self.dtype, device=self.device)
            torch.sub(local[:, None], self._fold_center, out=excess).abs_().sub_(self._fold_half)  # (3, Tf, s, C)
            sdf = _box_sdf(excess.view(3, -1)).view(boxes, -1, n).add_(self._tray_offset[:, part])  # (Tf, s, C)
            least = sdf.view(-1, n).amin(dim=0)
            best = least if best is None else torch.minimum(best, least, out=best)
        return best

    def _tray_boxes(
        self, tray_rt: torch.Tensor, tray_p: torch.Tensor, rot: torch.Tensor, centre: torch.Tensor, half: torch.Tensor
    ) -> torch.Tensor:
        """(G, B, C / G) separating-axis gap (face axes of both boxes) between the tray's boxes, (3, 3, C) transposed
        rotations and (3, C) positions, and each static box of G scenes (frames (G, B, ...), as _sphere_box)."""
        groups = rot.shape[0]
        per = tray_rt.shape[-1] // groups
        tray_rt = tray_rt.reshape(3, 3, groups, per).permute(2, 0, 1, 3)  # (G, 3, 3, K)
        tray_p = tray_p.reshape(3, groups, per).transpose(0, 1)[:, None]  # (G, 1, 3, K)
        rot_t = rot.transpose(-1, -2)  # (G, B, 3, 3)
        # rel[g, m, i, j] = (R_m^T R_tray)[i, j]: the tray's axis j in box m's frame, (G, B, 3, 3, K)
        rel = torch.matmul(rot_t, tray_rt.transpose(1, 2).reshape(groups, 1, 3, 3 * per)).view(groups, -1, 3, 3, per)
        absrel = rel.abs()
        tray_c, tray_h = self._tray_center, self._tray_half  # (T, 3) in the tray frame
        # the tray boxes' centres in box m's frame, and the gaps along box m's axes: (G, B, 3, T, K)
        origin = torch.matmul(rot_t, tray_p - centre[..., None])  # (G, B, 3, K)
        t = torch.matmul(tray_c, rel).add_(origin[..., None, :])
        gap_box = t.abs_().sub_(half[..., None, None]).sub_(torch.matmul(tray_h, absrel))
        # box m's centre in the tray boxes' frames, and the gaps along the tray's axes: (G, B, 3, T, K)
        offset = centre[..., None] - tray_p  # (G, B, 3, K) world
        v = (offset[:, :, None] * tray_rt[:, None]).sum(dim=-2)[..., None, :] - tray_c.t()[:, :, None]
        reach = torch.matmul(half[:, :, None, :], absrel.view(groups, -1, 3, 3 * per)).view(groups, -1, 3, 1, per)
        gap_tray = v.abs_().sub_(tray_h.t()[:, :, None]).sub_(reach)
        return torch.maximum(gap_box.amax(dim=2), gap_tray.amax(dim=2)).amin(dim=2)


# ---------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class GeomGroup:
    """Arm geoms of one kind for SphereChecker._geom_gaps (round: cylinders and capsules, a box only along their z;
    boxes): per geom its body, its m axes (rows of `rot_t`, (k, m, 3): z, or x y z) and centre ((k, 1, 3)) in
    the body frame, box half sizes along those axes (k, m), disc and padded ball radii (k,)."""

    rows: torch.Tensor  # (k,) arm * 7 + body: the geom's body among both arms' stacked body frames
    rot_t: torch.Tensor
    center: torch.Tensor
    half: torch.Tensor
    disc: torch.Tensor
    ball: torch.Tensor
    has_disc: bool  # any cylinder among them (known on the host: no device sync per call)


def grasp_tensors(
    grasp: TrayGrasp | Sequence[TrayGrasp], dtype: torch.dtype, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per tool part (TrayGrasp.tool_parts) the tray's positions (G, 3) and rotations (G, 3, 3) in that tool's
    frame: G = 1 for one grasp, else one row per grasp of the sequence (all two-tool or all left-only)."""
    grasps = _grasp_list(grasp)
    return [
        tuple(torch.as_tensor(np.stack(values), dtype=dtype, device=device) for values in zip(*part, strict=True))
        for part in zip(*(g.tool_parts() for g in grasps), strict=True)
    ]


def kernel_grasp(
    grasp: TrayGrasp | Sequence[TrayGrasp] | None, dtype: type[np.floating] = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """grasp_tensors as the compiled kernels read them: the tray's offsets (G, P, 3) and rotations (G, P, 3, 3) in
    each tool part's frame, in `dtype`; for no grasp zeros of G = P = 1 (the kernels then read none)."""
    if grasp is None:
        return np.zeros((1, 1, 3), dtype=dtype), np.zeros((1, 1, 3, 3), dtype=dtype)
    grasps = _grasp_list(grasp)
    parts = [g.tool_parts() for g in grasps]
    offsets = np.array([[offset for offset, _ in p] for p in parts], dtype=dtype)
    turns = np.array([[turn for _, turn in p] for p in parts], dtype=dtype)
    return offsets, turns


def _grasp_list(grasp: TrayGrasp | Sequence[TrayGrasp]) -> list[TrayGrasp]:
    """The grasps of one call; ValueError unless one TrayGrasp or a non-empty sequence of them, all two-tool or all
    left-only."""
    grasps = [grasp] if isinstance(grasp, TrayGrasp) else list(grasp)
    if not grasps or not all(isinstance(g, TrayGrasp) for g in grasps):
        raise ValueError("expected a TrayGrasp or a non-empty sequence of them")
    if len({g.two_tool for g in grasps}) > 1:
        raise ValueError("the grasps of one call must all be two-tool or all left-only")
    return grasps


def _scene_count(batch: tuple[int, ...], *counts: int) -> int:
    """The number of scenes G of a call (1: one scene for all configurations), from the obstacles' and grasps'
    leading counts; ValueError unless each is 1 or G and the positions' batch (G, ...) has G first."""
    groups = max(counts)
    if any(c not in (1, groups) for c in counts):
        raise ValueError(f"per-scene obstacles and grasps disagree on the number of scenes: {counts}")
    if groups > 1 and (not batch or batch[0] != groups):
        raise ValueError(f"{groups} scenes need positions ({groups}, ..., {NUM_JOINTS}), got batch shape {batch}")
    return groups


def _per_configuration(values: torch.Tensor, n: int) -> torch.Tensor:
    """(G, B, C / G or 1) per scene -> (B, C) per configuration (scene g's configurations after scene g - 1's)."""
    groups, boxes = values.shape[:2]
    return values.expand(groups, boxes, n // groups).transpose(0, 1).reshape(boxes, n)


def _box_frames(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., B, 7) boxes (centre, full size, yaw) -> rotations (..., B, 3, 3), centres (..., B, 3), half sizes."""
    yaw = boxes[..., 6]
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    rot = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=-1).reshape(*yaw.shape, 3, 3)
    return rot, boxes[..., 0:3], boxes[..., 3:6] / 2


def _box_sdf(excess: torch.Tensor) -> torch.Tensor:
    """(..., P) box SDF from `excess` (..., 3, P) = |local| - half per axis (overwritten)."""
    x, y, z = excess.unbind(-2)
    inside = torch.maximum(x, y)
    inside = torch.maximum(inside, z, out=inside).clamp_max_(0.0)
    excess.clamp_min_(0.0).square_()
    return x.add_(y).add_(z).sqrt_().add_(inside)


def _quat_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """(4,) quaternion (w, x, y, z) -> (3, 3) rotation matrix."""
    w, x, y, z = quat / torch.linalg.vector_norm(quat)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]).reshape(3, 3)  # fmt: skip


def _mean_rotation(m0: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor, dim: int) -> torch.Tensor:
    """The columns (x, y, z stacked at `dim`) of the rotation nearest to M = (m0 m1 m2) / 2, M's columns the sums of
    two rotations' columns (3 components along `dim`): kinematics.mean_rotation, batched, no host sync."""
    c0, c1, c2 = 0.5 * m0, 0.5 * m1, 0.5 * m2
    cof0, cof1 = torch.linalg.cross(c1, c2, dim=dim), torch.linalg.cross(c2, c0, dim=dim)  # of det(M) M^-T
    det = (c0 * cof0).sum(dim=dim, keepdim=True)
    x, y = 0.5 * (c0 + cof0 / det), 0.5 * (c1 + cof1 / det)  # a Newton step of the polar iteration
    x = x / torch.linalg.vector_norm(x, dim=dim, keepdim=True)
    y = y - (x * y).sum(dim=dim, keepdim=True) * x
    y = y / torch.linalg.vector_norm(y, dim=dim, keepdim=True)
    return torch.stack([x, y, torch.linalg.cross(x, y, dim=dim)], dim=dim)
