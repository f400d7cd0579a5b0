"""`make demo`: the product end to end, for real, on held-out cluttered scenes, with its baselines.

For each planner — the straight minimum-jerk joint line to the IK goal (no search), the CEM expert (searches, sees
the boxes) and the learned flow planner (shipped default checkpoint; its model does not see the boxes yet) — it runs
`evaluate` on the first few scenes of config/eval_scenes.yaml (written by `make_scenes`): the MuJoCo bridge acting
as the arm controllers with the scene's boxes placed, and for flow the `planner` node as its own process called
over DDS (/flow_planner/plan, execute=true); every episode is reach -> attach -> carry in the physics, judged by the
one success function (no obstacle contact, tray level). Then it prints one table (success per template, collisions,
clearance, jerk, planning time) and writes videos and plots under out/demo/.

    python tools/demo.py [--episodes N] [--execution-steps K] [--planners straight,cem,flow]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parents[1]
OUT = WORKSPACE / "out" / "demo"
EVALUATE = WORKSPACE / "install" / "flow_planner_eval" / "lib" / "flow_planner_eval" / "evaluate"
EPISODES_FILE = WORKSPACE / "config" / "eval_scenes.yaml"
PLANNERS = ("straight", "cem", "flow")
#: Bridge speed for the planners evaluated in this process (sim time runs 4x; timings and results are unaffected);
#: flow runs at real time, as a robot would.
FAST_RTF = 4.0


def evaluate(planner: str, episodes: int, execution_steps: int) -> dict:
    report = OUT / f"{planner}.json"
    command = [
        str(EVALUATE), "--planner", planner, "--episodes", str(EPISODES_FILE), "--limit", str(episodes),
        "--report", str(report), "--video", str(OUT), "--video-episodes", "2", "--plots", str(OUT / f"plots_{planner}"),
        "--execution-steps", str(execution_steps), "--real-time-factor", str(1.0 if planner == "flow" else FAST_RTF),
    ]  # fmt: skip
    what = {"straight": "min-jerk joint line, no search", "cem": "the CEM expert, sees the boxes",
            "flow": "the flow planner over DDS, does not see the boxes"}[planner]  # fmt: skip
    print(f"\n=== {planner} ({what}): {episodes} held-out scenes (reach, attach, carry) in the physics", flush=True)
    print("$ " + " ".join(os.path.relpath(c, WORKSPACE) if c.startswith(str(WORKSPACE)) else c for c in command))
    start = time.perf_counter()
    # stderr carries the nodes' logs (every accepted trajectory): shown only when evaluate fails.
    result = subprocess.run(command, cwd=WORKSPACE, env=os.environ, check=False, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.stderr.write("\n".join(result.stderr.splitlines()[-20:]) + "\n")
        raise SystemExit(f"demo: evaluate --planner {planner} failed (exit {result.returncode})")
    print(f"--- {planner}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="scenes to run per planner (the file's first N)")
    parser.add_argument("--execution-steps", type=int, default=60, help="flow: replan every K waypoints (60 = none)")
    parser.add_argument("--planners", default=",".join(PLANNERS), help="comma-separated subset of straight,cem,flow")
    args = parser.parse_args()
    from flow_planner_eval.metrics import table
    from flow_planner_ros.node.planner_node import default_checkpoint_path

    planners = [p for p in args.planners.split(",") if p]
    if not planners or any(p not in PLANNERS for p in planners):
        print(f"demo: --planners must be a subset of {','.join(PLANNERS)}", file=sys.stderr)
        return 2
    checkpoint = default_checkpoint_path()
    if "flow" in planners and not checkpoint.is_file():
        print(f"demo: no default checkpoint at {checkpoint}; run `make pipeline` first", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"flow-planner demo: {', '.join(planners)} on {args.episodes} held-out cluttered scenes from "
          f"{EPISODES_FILE.relative_to(WORKSPACE)}\n(written by make_scenes), through the bridge and the controller "
          f"topics over DDS.")  # fmt: skip
    reports = [evaluate(p, args.episodes, args.execution_steps if p == "flow" else 60) for p in planners]
    print(f"\n=== {' vs '.join(planners)} (measured just now)\n" + table(reports))
    if "flow" in planners:
        from flow_planner_ros.learning.checkpoint import load_checkpoint

        print(f"flow: the shipped checkpoint's own metadata: {load_checkpoint(checkpoint).summary()}; every plan "
              "is checked against the scene's boxes before it is published.")  # fmt: skip
    videos = sorted(p.relative_to(WORKSPACE) for p in OUT.glob("*.mp4"))
    print(f"\nvideos: {', '.join(map(str, videos))}; plots and reports in {OUT.relative_to(WORKSPACE)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
