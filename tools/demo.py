"""`make demo`: the product end to end, for real, on held-out tray poses.

For each planner (the learned flow planner with the shipped default checkpoint, then the CEM expert) it runs
`evaluate`: the MuJoCo bridge acting as the arm controllers, and for flow the `planner` node as its own process
called over DDS (/flow_planner/plan, execute=true); every episode is reach -> attach -> carry in the physics, judged
by the one success function. Then it prints a flow-vs-CEM table and writes a video and plots under out/demo/.

    python tools/demo.py [--episodes N] [--execution-steps K]
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
EVALUATE = WORKSPACE / "install" / "flow_planner_ros" / "lib" / "flow_planner_ros" / "evaluate"
EPISODES_FILE = WORKSPACE / "config" / "eval_episodes.yaml"


def evaluate(planner: str, episodes: int, execution_steps: int) -> dict:
    report = OUT / f"{planner}.json"
    command = [
        str(EVALUATE), "--planner", planner, "--episodes", str(EPISODES_FILE), "--limit", str(episodes),
        "--report", str(report), "--video", str(OUT), "--video-episodes", "2", "--plots", str(OUT / f"plots_{planner}"),
        "--execution-steps", str(execution_steps),
    ]  # fmt: skip
    print(f"\n=== {planner}: {episodes} held-out tray episodes (reach, attach, carry) in the physics", flush=True)
    print("$ " + " ".join(os.path.relpath(c, WORKSPACE) if c.startswith(str(WORKSPACE)) else c for c in command))
    start = time.perf_counter()
    result = subprocess.run(command, cwd=WORKSPACE, env=os.environ, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: evaluate --planner {planner} failed (exit {result.returncode})")
    print(f"--- {planner}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="held-out tray poses to run per planner")
    parser.add_argument("--execution-steps", type=int, default=60, help="flow: replan every K waypoints (60 = none)")
    args = parser.parse_args()
    from flow_planner_ros.evaluation import table
    from flow_planner_ros.planner_node import default_checkpoint_path

    checkpoint = default_checkpoint_path()
    if not checkpoint.is_file():
        print(f"demo: no default checkpoint at {checkpoint}; run `make pipeline` first", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"flow-planner demo: flow planner ({checkpoint.name}) vs the CEM expert on {args.episodes} held-out tray")
    print(f"poses from {EPISODES_FILE.relative_to(WORKSPACE)}, through the bridge and controller topics over DDS.")
    reports = [evaluate("flow", args.episodes, args.execution_steps), evaluate("cem", args.episodes, 60)]
    print("\n=== flow vs CEM (measured just now)\n" + table(reports))
    videos = sorted(p.relative_to(WORKSPACE) for p in OUT.glob("*.mp4"))
    print(f"\nvideos: {', '.join(map(str, videos))}; plots and reports in {OUT.relative_to(WORKSPACE)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
