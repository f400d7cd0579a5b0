"""The MJCF's kinematics and collision geoms as a `flow_planner_common.kinematics.RobotGeometry` (no MuJoCo at use).

`python -m data_collector_ros.robot_geometry > src/flow_planner_common/flow_planner_common/robot_geometry.json`
regenerates the committed file; a test checks that it equals what the MJCF gives.
"""

from __future__ import annotations

import mujoco
import numpy as np

from data_collector_ros.scene import (
    EE_SITES,
    HANDLE_SITES,
    TABLE_BODY,
    TOOL_BODIES,
    TRAY_BODY,
    load_model,
)
from flow_planner_common.kinematics import RobotGeometry
from flow_planner_common.robot import LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS

#: Geom names of the table top and the floor plane.
TABLE_GEOM, FLOOR_GEOM = "table_top", "floor"


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    index = mujoco.mj_name2id(model, kind, name)
    if index < 0:
        raise KeyError(f"scene has no {kind.name.removeprefix('mjOBJ_').lower()} named {name!r}")
    return index


def _mat(quat: np.ndarray) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(quat, dtype=float))
    return out.reshape(3, 3)


def _collides(model: mujoco.MjModel, geom: int) -> bool:
    return bool(model.geom_contype[geom] or model.geom_conaffinity[geom])


def geometry_from_model(model: mujoco.MjModel) -> RobotGeometry:
    """Kinematic chains, collision shapes, tray boxes and the table of a compiled scene.

    Capsules and boxes stay exact; a cylinder becomes the capsule of its radius and axis, or its bounding box when it
    is no longer than its radius (the shoulder: a capsule's cap would reach 6 cm below it, next to the table)."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    arms: list[dict[str, np.ndarray]] = []
    for joints, tool_name, site_name in zip((LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS), TOOL_BODIES, EE_SITES, strict=True):
        joint_ids = [_id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in joints]
        bodies = [int(model.jnt_bodyid[j]) for j in joint_ids]
        tool = _id(model, mujoco.mjtObj.mjOBJ_BODY, tool_name)
        base = int(model.body_parentid[bodies[0]])
        for j, body in zip(joint_ids, bodies, strict=True):
            if int(model.jnt_type[j]) != mujoco.mjtJoint.mjJNT_HINGE or np.any(model.jnt_pos[j] != 0.0):
                name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
                raise ValueError(f"joint {name}: expected a hinge through its body origin")
            if int(model.body_dofnum[body]) != 1:
                raise ValueError(f"body {body} must carry exactly one joint")
        if [int(model.body_parentid[b]) for b in [*bodies[1:], tool]] != bodies:
            raise ValueError(f"{tool_name}: the arm's bodies must form one chain")
        if model.body_dofnum[base] != 0 or int(model.body_weldid[base]) != 0:
            raise ValueError("an arm base must be fixed to the world")
        site = _id(model, mujoco.mjtObj.mjOBJ_SITE, site_name)
        if int(model.site_bodyid[site]) != tool:
            raise ValueError(f"site {site_name} must be on {tool_name}")
        chain = [*bodies, tool]
        caps: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        boxes: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for geom in range(model.ngeom):
            body = int(model.geom_bodyid[geom])
            if body == base and _collides(model, geom):
                raise ValueError("arm base geoms must not collide (the checker models the moving links only)")
            if body not in chain or not _collides(model, geom):
                continue
            rot, pos, size = _mat(model.geom_quat[geom]), model.geom_pos[geom].copy(), model.geom_size[geom]
            kind = int(model.geom_type[geom])
            stubby = kind == mujoco.mjtGeom.mjGEOM_CYLINDER and size[1] <= size[0]
            if kind == mujoco.mjtGeom.mjGEOM_CAPSULE or (kind == mujoco.mjtGeom.mjGEOM_CYLINDER and not stubby):
                caps.append((chain.index(body), pos - rot[:, 2] * size[1], pos + rot[:, 2] * size[1], float(size[0])))
            elif stubby:  # its bounding box: a capsule's caps would reach a radius beyond its ends
                boxes.append((chain.index(body), pos, rot, np.array([size[0], size[0], size[1]])))
            elif kind == mujoco.mjtGeom.mjGEOM_BOX:
                boxes.append((chain.index(body), pos, rot, size.copy()))
            else:
                raise ValueError(f"geom {geom}: only capsules, cylinders and boxes on the arms")
        arms.append(
            {
                "base_pos": data.xpos[base].copy(),
                "base_rot": data.xmat[base].reshape(3, 3).copy(),
                "link_pos": model.body_pos[bodies].copy(),
                "link_rot": np.stack([_mat(model.body_quat[b]) for b in bodies]),
                "joint_axis": model.jnt_axis[joint_ids].copy(),
                "tool_pos": model.body_pos[tool].copy(),
                "tool_rot": _mat(model.body_quat[tool]),
                "ee_pos": model.site_pos[site].copy(),
                "ee_rot": _mat(model.site_quat[site]),
                "capsule_body": np.array([c[0] for c in caps], dtype=np.int64),
                "capsule_p0": np.array([c[1] for c in caps]),
                "capsule_p1": np.array([c[2] for c in caps]),
                "capsule_radius": np.array([c[3] for c in caps]),
                "box_body": np.array([b[0] for b in boxes], dtype=np.int64),
                "box_center": np.array([b[1] for b in boxes]).reshape(-1, 3),
                "box_rot": np.array([b[2] for b in boxes]).reshape(-1, 3, 3),
                "box_half": np.array([b[3] for b in boxes]).reshape(-1, 3),
            }
        )
    if any(arms[0][k].shape != arms[1][k].shape for k in arms[0]):
        raise ValueError("both arms must have the same shapes on the same bodies")
    stacked = {k: np.stack([arms[0][k], arms[1][k]]) for k in arms[0]}

    tray = _id(model, mujoco.mjtObj.mjOBJ_BODY, TRAY_BODY)
    handles = {f"{site}_geom" for site in HANDLE_SITES}
    handle_sites = [_id(model, mujoco.mjtObj.mjOBJ_SITE, name) for name in HANDLE_SITES]
    if any(int(model.site_bodyid[s]) != tray for s in handle_sites):
        raise ValueError("the handle sites must be direct children of the tray body")
    tray_geoms = [g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == tray and _collides(model, g)]
    if any(int(model.geom_type[g]) != mujoco.mjtGeom.mjGEOM_BOX for g in tray_geoms):
        raise ValueError("the tray must be made of boxes")
    table = _id(model, mujoco.mjtObj.mjOBJ_GEOM, TABLE_GEOM)
    floor = _id(model, mujoco.mjtObj.mjOBJ_GEOM, FLOOR_GEOM)
    if int(model.geom_bodyid[table]) != _id(model, mujoco.mjtObj.mjOBJ_BODY, TABLE_BODY):
        raise ValueError(f"{TABLE_GEOM} must belong to {TABLE_BODY}")
    if (
        int(model.geom_type[table]) != mujoco.mjtGeom.mjGEOM_BOX
        or int(model.geom_type[floor]) != mujoco.mjtGeom.mjGEOM_PLANE
    ):
        raise ValueError("the table must be a box and the floor a plane")
    if not np.allclose(data.geom_xmat[floor].reshape(3, 3)[:, 2], (0.0, 0.0, 1.0)):
        raise ValueError("the floor plane must face +z")
    return RobotGeometry(
        **stacked,
        tray_center=model.geom_pos[tray_geoms].copy(),
        tray_rot=np.stack([_mat(model.geom_quat[g]) for g in tray_geoms]),
        tray_half=model.geom_size[tray_geoms].copy(),
        tray_handle=np.array(
            [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) in handles for g in tray_geoms], dtype=bool
        ),
        handle_pos=np.stack([model.site_pos[s] for s in handle_sites]),
        handle_rot=np.stack([_mat(model.site_quat[s]) for s in handle_sites]),
        table_center=data.geom_xpos[table].copy(),
        table_rot=data.geom_xmat[table].reshape(3, 3).copy(),
        table_half=model.geom_size[table].copy(),
        floor_z=float(data.geom_xpos[floor][2]),
    )


def main() -> None:
    """Print the packaged scene's geometry as JSON (the committed robot_geometry.json)."""
    print(geometry_from_model(load_model()).to_json(), end="")


if __name__ == "__main__":
    main()
