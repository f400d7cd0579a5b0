"""The MuJoCo scene, named once: MJCF path and the names of its sites, bodies, equalities and geom groups.

`SceneIndex` resolves those names in a compiled model into the index arrays the simulation, IK, kinematic
checks and rendering use, so no other module looks names up by string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from flow_planner_common.obstacles import MAX_OBSTACLES, Box, ObstacleError
from flow_planner_common.robot import JOINT_NAMES, NUM_JOINTS

#: The MJCF file (shipped as package data next to this module).
SCENE_XML: Path = Path(__file__).resolve().parent / "assets" / "dual_arm_tray.xml"

ARMS: tuple[str, str] = ("left", "right")
#: End-effector (tool tip) sites; their z axis is the approach direction.
EE_SITES: tuple[str, str] = ("left_ee", "right_ee")
#: Bodies welded to the tray when grasping.
TOOL_BODIES: tuple[str, str] = ("left_tool", "right_tool")
#: Grasp frames on the tray handles (same orientation convention as EE_SITES).
HANDLE_SITES: tuple[str, str] = ("left_handle", "right_handle")
#: Weld equalities, one per arm, inactive until attach().
GRASP_WELDS: tuple[str, str] = ("left_grasp", "right_grasp")
TRAY_BODY = "tray"
TRAY_JOINT = "tray_joint"
TABLE_BODY = "table"
#: Static environment geoms an arm must not touch.
ENV_GEOMS: tuple[str, ...] = ("table_top", "floor")
ARM_BASE_BODIES: tuple[str, str] = ("left_base", "right_base")
#: Obstacle slots (boxes), sized and placed per episode by `place_obstacles`.
OBSTACLE_GEOMS: tuple[str, ...] = tuple(f"obstacle_{i}" for i in range(MAX_OBSTACLES))
#: Collision bits of an enabled obstacle (like the table: it collides with both arms and the tray).
OBSTACLE_CONTYPE, OBSTACLE_CONAFFINITY = 1, 14
OBSTACLE_RGBA = np.array([0.75, 0.2, 0.2, 1.0])
DEFAULT_CAMERA = "overview"
#: Position actuators (targets, rad) and velocity actuators (targets, rad/s), in JOINT_NAMES order.
POSITION_ACTUATORS: tuple[str, ...] = tuple(name.removesuffix("_joint") + "_pos" for name in JOINT_NAMES)
VELOCITY_ACTUATORS: tuple[str, ...] = tuple(name.removesuffix("_joint") + "_vel" for name in JOINT_NAMES)

# Geom groups used by collision classification.
GROUP_OTHER, GROUP_ENV, GROUP_LEFT, GROUP_RIGHT, GROUP_TRAY, GROUP_OBSTACLE = 0, 1, 2, 3, 4, 5


def load_model(path: str | Path | None = None) -> mujoco.MjModel:
    """Compile the scene (default: the packaged SCENE_XML)."""
    return mujoco.MjModel.from_xml_path(str(path or SCENE_XML))


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    index = mujoco.mj_name2id(model, kind, name)
    if index < 0:
        raise KeyError(f"scene has no {kind.name.removeprefix('mjOBJ_').lower()} named {name!r}")
    return index


def _subtree_bodies(model: mujoco.MjModel, root: int) -> list[int]:
    return [b for b in range(model.nbody) if _has_ancestor(model, b, root)]


def _has_ancestor(model: mujoco.MjModel, body: int, root: int) -> bool:
    while body > 0:
        if body == root:
            return True
        body = int(model.body_parentid[body])
    return root == 0


@dataclass(frozen=True)
class SceneIndex:
    """Indices of the named scene elements in one compiled model (arrays in JOINT_NAMES / ARMS order)."""

    qpos_adr: np.ndarray  # (12,) arm joint addresses in qpos
    dof_adr: np.ndarray  # (12,) arm joint addresses in qvel
    position_actuators: np.ndarray  # (12,)
    velocity_actuators: np.ndarray  # (12,)
    ee_sites: np.ndarray  # (2,)
    handle_sites: np.ndarray  # (2,)
    tool_bodies: np.ndarray  # (2,)
    grasp_welds: np.ndarray  # (2,)
    tray_body: int
    tray_qpos_adr: int  # 7 values: x y z qw qx qy qz
    tray_dof_adr: int  # 6 values
    geom_group: np.ndarray  # (ngeom,) GROUP_* per geom
    obstacle_geoms: np.ndarray  # (MAX_OBSTACLES,) obstacle slot geom ids

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> SceneIndex:
        joints = [_id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in JOINT_NAMES]
        tray_joint = _id(model, mujoco.mjtObj.mjOBJ_JOINT, TRAY_JOINT)
        group = np.full(model.ngeom, GROUP_OTHER, dtype=np.int64)
        for name in ENV_GEOMS:
            group[_id(model, mujoco.mjtObj.mjOBJ_GEOM, name)] = GROUP_ENV
        for base, label in zip(ARM_BASE_BODIES, (GROUP_LEFT, GROUP_RIGHT), strict=True):
            bodies = _subtree_bodies(model, _id(model, mujoco.mjtObj.mjOBJ_BODY, base))
            mask = np.isin(model.geom_bodyid, bodies) & (model.geom_contype | model.geom_conaffinity > 0)
            group[mask] = label
        tray_body = _id(model, mujoco.mjtObj.mjOBJ_BODY, TRAY_BODY)
        group[model.geom_bodyid == tray_body] = GROUP_TRAY
        obstacle_geoms = np.array([_id(model, mujoco.mjtObj.mjOBJ_GEOM, n) for n in OBSTACLE_GEOMS])
        group[obstacle_geoms] = GROUP_OBSTACLE
        index = cls(
            qpos_adr=np.array([model.jnt_qposadr[j] for j in joints]),
            dof_adr=np.array([model.jnt_dofadr[j] for j in joints]),
            position_actuators=np.array([_id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in POSITION_ACTUATORS]),
            velocity_actuators=np.array([_id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in VELOCITY_ACTUATORS]),
            ee_sites=np.array([_id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in EE_SITES]),
            handle_sites=np.array([_id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in HANDLE_SITES]),
            tool_bodies=np.array([_id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in TOOL_BODIES]),
            grasp_welds=np.array([_id(model, mujoco.mjtObj.mjOBJ_EQUALITY, n) for n in GRASP_WELDS]),
            tray_body=tray_body,
            tray_qpos_adr=int(model.jnt_qposadr[tray_joint]),
            tray_dof_adr=int(model.jnt_dofadr[tray_joint]),
            geom_group=group,
            obstacle_geoms=obstacle_geoms,
        )
        assert index.qpos_adr.shape == (NUM_JOINTS,)
        return index

    def arm_slice(self, arm: int) -> slice:
        """Columns of arm 0 (left) or 1 (right) in a (…, 12) joint array."""
        half = NUM_JOINTS // 2
        return slice(arm * half, (arm + 1) * half)


def classify_contacts(index: SceneIndex, geom_pairs: np.ndarray) -> tuple[bool, bool]:
    """(arm-arm contact, arm-environment contact) among (n, 2) contact geom id pairs."""
    if len(geom_pairs) == 0:
        return False, False
    codes = _codes(index, geom_pairs)
    return bool((codes == ARM_ARM).any()), bool((codes == ARM_ENV).any())


def obstacle_contacts(index: SceneIndex, geom_pairs: np.ndarray) -> tuple[bool, bool]:
    """(arm-obstacle contact, tray-obstacle contact) among (n, 2) contact geom id pairs."""
    if len(geom_pairs) == 0:
        return False, False
    codes = _codes(index, geom_pairs)
    return bool((codes == ARM_OBSTACLE).any()), bool((codes == TRAY_OBSTACLE).any())


def _codes(index: SceneIndex, geom_pairs: np.ndarray) -> np.ndarray:
    groups = index.geom_group[np.asarray(geom_pairs)]
    return _PAIR_CODE[groups[:, 0], groups[:, 1]]


# _PAIR_CODE[group_a, group_b]: the kind of a contact between two geom groups (0 = none of interest).
ARM_ARM, ARM_ENV, ARM_OBSTACLE, TRAY_OBSTACLE = 1, 2, 3, 4
_PAIR_CODE = np.zeros((6, 6), dtype=np.int8)
_PAIR_CODE[GROUP_LEFT, GROUP_RIGHT] = _PAIR_CODE[GROUP_RIGHT, GROUP_LEFT] = ARM_ARM
for _arm in (GROUP_LEFT, GROUP_RIGHT):
    _PAIR_CODE[GROUP_ENV, _arm] = _PAIR_CODE[_arm, GROUP_ENV] = ARM_ENV
    _PAIR_CODE[GROUP_OBSTACLE, _arm] = _PAIR_CODE[_arm, GROUP_OBSTACLE] = ARM_OBSTACLE
_PAIR_CODE[GROUP_OBSTACLE, GROUP_TRAY] = _PAIR_CODE[GROUP_TRAY, GROUP_OBSTACLE] = TRAY_OBSTACLE


def place_obstacles(model: mujoco.MjModel, index: SceneIndex, boxes: tuple[Box, ...] | list[Box]) -> None:
    """Size, place and enable one obstacle slot per box (world frame); disable and hide the others.

    Each slot is a static body holding one box geom. This changes the model in place, no recompilation: body pose,
    geom size, the bounding sphere and box of the collision broad phase, the collision bits of geom and body, and
    the colour. Call mj_forward (or mj_kinematics) afterwards.
    """
    if len(boxes) > MAX_OBSTACLES:
        raise ObstacleError(f"{len(boxes)} obstacles, the scene has {MAX_OBSTACLES} slots")
    for slot, geom in enumerate(index.obstacle_geoms):
        body = model.geom_bodyid[geom]
        used = slot < len(boxes)
        half = np.asarray(boxes[slot].size, dtype=float) / 2 if used else np.full(3, _HIDDEN_HALF_SIZE)
        model.body_pos[body] = boxes[slot].center if used else (0.0, 0.0, -1.0)
        model.body_quat[body] = boxes[slot].quaternion() if used else (1.0, 0.0, 0.0, 0.0)
        model.geom_size[geom] = half
        model.geom_rbound[geom] = float(np.linalg.norm(half))
        model.geom_aabb[geom] = np.concatenate([np.zeros(3), half])
        contype, conaffinity = (OBSTACLE_CONTYPE, OBSTACLE_CONAFFINITY) if used else (0, 0)
        model.geom_contype[geom] = model.body_contype[body] = contype
        model.geom_conaffinity[geom] = model.body_conaffinity[body] = conaffinity
        model.geom_rgba[geom] = OBSTACLE_RGBA if used else 0.0


_HIDDEN_HALF_SIZE = 0.0025
