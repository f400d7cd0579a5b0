"""MuJoCo as the judge of the kinematic collision checker (flow_planner_common.sphere_checker).

`MujocoJudge.contacts` runs mj_kinematics + mj_collision for one configuration with the tray at a given pose and
says, per category of `kinematics.CATEGORIES`, whether MuJoCo reports a contact, on a model copy whose tray also
collides with the arms, the tools' pairs with the tray left out (they hold it: the grasp, as the checker does).

`judge_cases` builds the cases both the sphere checker's test and the collision benchmark score a checker on:
scenes of the real family (`scene_family.scene_for_index`: tray start, goal and template boxes), each with up to
`MAX_OBSTACLES` boxes in all (the template's plus random ones around the arms and the tray), half with the tray
resting at the scene's start pose, half carried (held by its left handle on the left end effector), and
configurations half near home or the scene's IK solutions (reach: the handles at the start; carry: at the goal),
half anywhere in ±pi. `Verdicts` counts a checker's false "free" (MuJoCo has a contact the checker does not report
at margin 0) per category and its false positives (MuJoCo reports nothing, the checker a contact).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import mujoco
import numpy as np

from data_collector_ros.ik import IKSolver
from data_collector_ros.scene import (
    GROUP_ENV,
    GROUP_LEFT,
    GROUP_RIGHT,
    GROUP_TRAY,
    HANDLE_SITES,
    SceneIndex,
    classify_contacts,
    load_model,
    obstacle_contacts,
    place_obstacles,
)
from data_collector_ros.scene_family import FamilyConfig, scene_for_index
from data_collector_ros.scene_validity import StraightReach
from data_collector_ros.simulation import Simulation
from data_collector_ros.task import handle_targets
from flow_planner_common.kinematics import CATEGORIES, OVERALL_CATEGORIES, ArmKinematics, RobotGeometry, TrayGrasp
from flow_planner_common.obstacles import MAX_OBSTACLES, Box
from flow_planner_common.robot import HOME_POSITIONS, NUM_JOINTS

#: Geom names of the tools and of the table top (tray_table: the tray against the table top only, as the checker).
TOOL_GEOMS: tuple[str, str] = ("left_tool_geom", "right_tool_geom")
TABLE_GEOM = "table_top"
#: Where an absent tray is put (far below the floor, touching nothing).
AWAY = np.array([0.0, 0.0, -10.0])
#: MuJoCo's signed distances are computed up to this (m); pairs farther apart report it.
DISTANCE_LIMIT = 0.2
#: The categories that need a tray.
TRAY_CATEGORIES: frozenset[str] = frozenset({"tray_obstacle", "arm_tray", "tray_table"})


def carry_grasp(model: mujoco.MjModel, geometry: RobotGeometry) -> TrayGrasp:
    """The tray held with its left handle site on the left end-effector site (the grasp the weld keeps)."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, HANDLE_SITES[0])
    handle_rot = np.zeros(9)
    mujoco.mju_quat2Mat(handle_rot, model.site_quat[site])
    rotation = geometry.ee_rot[0] @ handle_rot.reshape(3, 3).T
    return TrayGrasp(geometry.ee_pos[0] - rotation @ model.site_pos[site], rotation)


class MujocoJudge:
    """Contacts (mj_collision) and signed distances (mj_geomDistance) per category and configuration, on a private
    model copy (thread-confined)."""

    def __init__(self, model: mujoco.MjModel | None = None) -> None:
        self.model = copy.deepcopy(model if model is not None else load_model())
        self.index = SceneIndex.from_model(self.model)
        self.data = mujoco.MjData(self.model)
        groups = self.index.geom_group
        self.model.geom_conaffinity[groups == GROUP_TRAY] |= 2 | 4
        self.model.body_conaffinity[self.index.tray_body] |= 2 | 4  # the broad phase filters on the body's bits
        names = [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(self.model.ngeom)]
        tools = np.isin(names, TOOL_GEOMS)
        arm, tray = np.isin(groups, (GROUP_LEFT, GROUP_RIGHT)), groups == GROUP_TRAY
        self._arm_tray = (arm[:, None] & tray[None, :]) & ~tools[:, None]
        table = np.array([n == TABLE_GEOM for n in names]) & (groups == GROUP_ENV)
        self._tray_table = tray[:, None] & table[None, :]
        self._tray_q = self.index.tray_qpos_adr
        # geom pairs per category for distances (the obstacle pairs follow the placed boxes)
        left, right = np.flatnonzero(groups == GROUP_LEFT), np.flatnonzero(groups == GROUP_RIGHT)
        env, tray_ids = np.flatnonzero(groups == GROUP_ENV), np.flatnonzero(tray)
        arms = np.concatenate([left, right])
        self._pairs: list[list[tuple[int, int]]] = [  # CATEGORIES order
            [(a, b) for a in left for b in right],
            [(a, b) for a in arms for b in env],
            [],
            [],
            [(a, b) for a in arms for b in tray_ids if self._arm_tray[a, b]],
            [(a, b) for a in tray_ids for b in np.flatnonzero(table)],
        ]
        self._arms, self._tray_ids = arms, tray_ids

    def set_scene(self, boxes: np.ndarray) -> None:
        """Place the scene's (M, 7) boxes."""
        boxes = np.asarray(boxes).reshape(-1, 7)
        place_obstacles(self.model, self.index, [Box.from_array(b) for b in boxes])
        used = self.index.obstacle_geoms[: len(boxes)]
        self._pairs[2] = [(a, b) for a in self._arms for b in used]
        self._pairs[3] = [(a, b) for a in self._tray_ids for b in used]

    def _place(self, q: np.ndarray, tray_pos: np.ndarray | None, tray_rot: np.ndarray | None) -> None:
        d = self.data
        d.qpos[self.index.qpos_adr] = q
        quat = np.array([1.0, 0.0, 0.0, 0.0])
        if tray_rot is not None:
            mujoco.mju_mat2Quat(quat, np.ascontiguousarray(tray_rot, dtype=float).ravel())
        d.qpos[self._tray_q : self._tray_q + 3] = AWAY if tray_pos is None else tray_pos
        d.qpos[self._tray_q + 3 : self._tray_q + 7] = quat
        mujoco.mj_kinematics(self.model, d)

    def distances(
        self, q: np.ndarray, tray_pos: np.ndarray | None = None, tray_rot: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(CATEGORIES),) smallest signed distance (m) per category (mj_geomDistance over the category's geom
        pairs; DISTANCE_LIMIT where every pair is at least that far; +inf for the tray's without a tray)."""
        self._place(q, tray_pos, tray_rot)
        out = np.full(len(CATEGORIES), DISTANCE_LIMIT)
        for k, pairs in enumerate(self._pairs):
            if tray_pos is None and CATEGORIES[k] in TRAY_CATEGORIES:
                out[k] = np.inf
                continue
            for a, b in pairs:
                distance = mujoco.mj_geomDistance(self.model, self.data, int(a), int(b), DISTANCE_LIMIT, None)
                out[k] = min(out[k], distance)
        return out

    def contacts(
        self, q: np.ndarray, tray_pos: np.ndarray | None = None, tray_rot: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(CATEGORIES),) bool: whether MuJoCo reports a contact per category (no tray: tray_pos None)."""
        d = self.data
        self._place(q, tray_pos, tray_rot)
        mujoco.mj_collision(self.model, d)
        pairs = d.contact.geom[: d.ncon]
        arm_arm, arm_env = classify_contacts(self.index, pairs)
        arm_obstacle, tray_obstacle = obstacle_contacts(self.index, pairs)
        a, b = pairs[:, 0], pairs[:, 1]
        arm_tray = bool((self._arm_tray[a, b] | self._arm_tray[b, a]).any())
        tray_table = bool((self._tray_table[a, b] | self._tray_table[b, a]).any())
        return np.array([arm_arm, arm_env, arm_obstacle, tray_obstacle, arm_tray, tray_table])


@dataclass(frozen=True)
class JudgeCase:
    """One scene with configurations and MuJoCo's verdicts; the tray resting (tray_pose) or carried (grasp)."""

    template: str
    boxes: np.ndarray  # (M, 7)
    positions: np.ndarray  # (n, 12)
    contacts: np.ndarray  # (n, len(CATEGORIES)) bool, MuJoCo
    tray_pose: np.ndarray | None = None  # (7,) resting
    grasp: TrayGrasp | None = None  # carried


def random_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 7) boxes around the arms' and the tray's workspace."""
    rows = [
        [rng.uniform(-0.1, 0.8), rng.uniform(-0.6, 0.6), rng.uniform(0.78, 1.4), *rng.uniform(0.03, 0.35, 3),
         rng.uniform(-np.pi, np.pi)]
        for _ in range(count)
    ]  # fmt: skip
    return np.array(rows).reshape(-1, 7)


def judge_cases(
    scenes: int, configs_per_scene: int, seed: int = 0, model: mujoco.MjModel | None = None
) -> list[JudgeCase]:
    """`scenes` family scenes (seed `seed`), every other one with the tray carried, each with MuJoCo's verdicts on
    `configs_per_scene` configurations (see the module docstring)."""
    sim = Simulation()
    ik = IKSolver(sim.model)
    reach = StraightReach(sim, ik)
    judge = MujocoJudge(model if model is not None else sim.model)
    kinematics = ArmKinematics()
    grasp = carry_grasp(judge.model, kinematics.geometry)
    family = FamilyConfig(seed=seed)
    rng = np.random.default_rng([seed, 2024])
    cases = []
    for i in range(scenes):
        scene = scene_for_index(family, i, reach)
        family_boxes = np.array([b.as_array() for b in scene.obstacles]).reshape(-1, 7)
        extra = random_boxes(rng, int(rng.integers(0, MAX_OBSTACLES - len(family_boxes) + 1)))
        boxes = np.concatenate([family_boxes, extra])
        start, goal = scene.start_pose(float(sim.rest_tray_pose[2])), scene.goal_pose()
        targets, quats = handle_targets(sim.model, sim.index, start)
        reach_goal = ik.solve(targets, quats, seed_positions=HOME_POSITIONS, seed=i).positions
        targets, quats = handle_targets(sim.model, sim.index, goal)
        carry_goal = ik.solve(targets, quats, seed_positions=reach_goal, seed=i).positions
        positions = sample_configurations(rng, configs_per_scene, (HOME_POSITIONS, reach_goal, carry_goal))
        judge.set_scene(boxes)
        carried = i % 2 == 1
        if carried:
            tray_pos, tray_rot = kinematics.tray_poses(positions, grasp)
        else:
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, start[3:7])
            tray_pos, tray_rot = np.broadcast_to(start[:3], (len(positions), 3)), np.broadcast_to(
                rot.reshape(3, 3), (len(positions), 3, 3))  # fmt: skip
        contacts = np.array([judge.contacts(q, p, r) for q, p, r in zip(positions, tray_pos, tray_rot, strict=True)])
        cases.append(JudgeCase(scene.template, boxes, positions, contacts, None if carried else start,
                               grasp if carried else None))  # fmt: skip
    return cases


def sample_configurations(rng: np.random.Generator, count: int, centres: tuple[np.ndarray, ...]) -> np.ndarray:
    """(count, 12): half near one of `centres` (normal, 0.05-0.6 rad), half uniform in ±pi."""
    centre = np.array(centres)[rng.integers(0, len(centres), count)]
    near = centre + rng.normal(0.0, 1.0, (count, NUM_JOINTS)) * rng.uniform(0.05, 0.6, (count, 1))
    anywhere = rng.uniform(-np.pi, np.pi, (count, NUM_JOINTS))
    return np.where((np.arange(count) % 2 == 0)[:, None], near, anywhere)


@dataclass(frozen=True)
class Verdicts:
    """A checker's clearances (margin 0) against MuJoCo's contacts over many configurations."""

    contacts: np.ndarray  # (n, len(CATEGORIES)) MuJoCo
    colliding: np.ndarray  # (n, len(CATEGORIES)) checker clearance <= 0

    @classmethod
    def of(cls, cases: list[JudgeCase], clearances: list[np.ndarray]) -> Verdicts:
        """clearances: per case (n, len(CATEGORIES))."""
        return cls(np.concatenate([c.contacts for c in cases]), np.concatenate(clearances) <= 0.0)

    @property
    def false_free(self) -> np.ndarray:
        """(len(CATEGORIES),) configurations where MuJoCo has a contact the checker calls free."""
        return (self.contacts & ~self.colliding).sum(axis=0)

    @property
    def overall(self) -> tuple[np.ndarray, np.ndarray]:
        """(n,) any contact per configuration in OVERALL_CATEGORIES: MuJoCo, checker."""
        k = len(OVERALL_CATEGORIES)
        return self.contacts[:, :k].any(axis=1), self.colliding[:, :k].any(axis=1)

    @property
    def false_positive_rate(self) -> float:
        """Share of the configurations MuJoCo finds free (OVERALL_CATEGORIES) that the checker calls colliding."""
        mujoco_hit, checker_hit = self.overall
        return float((checker_hit & ~mujoco_hit).sum() / max(1, (~mujoco_hit).sum()))

    def category_false_positives(self) -> np.ndarray:
        """(len(CATEGORIES),) per category: checker colliding where MuJoCo has no contact in that category."""
        return (self.colliding & ~self.contacts).sum(axis=0)

    def table(self) -> str:
        """Per-category counts as text."""
        lines = [f"{'category':14s} {'mujoco':>7s} {'checker':>8s} {'false free':>10s} {'false pos':>9s}"]
        positives = self.category_false_positives()
        for k, name in enumerate(CATEGORIES):
            lines.append(f"{name:14s} {self.contacts[:, k].sum():7d} {self.colliding[:, k].sum():8d} "
                         f"{self.false_free[k]:10d} {positives[k]:9d}")  # fmt: skip
        mujoco_hit, checker_hit = self.overall
        share = f"{(checker_hit & ~mujoco_hit).sum()}/{(~mujoco_hit).sum()} = {self.false_positive_rate:.1%}"
        lines.append(f"false-positive rate (MuJoCo free in {'/'.join(OVERALL_CATEGORIES)}, checker colliding): {share}")
        return "\n".join(lines)
