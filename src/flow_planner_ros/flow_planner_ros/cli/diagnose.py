"""diagnose --checkpoint CKPT --data FILE|DIR --report OUT.json [--plots DIR]: check a trained model.

Reports normalization round trip, formulation check, ground-truth MAE/RMSE and scale ratio on held-out data,
and goal/start conditioning sensitivity (see flow_planner_ros.learning.diagnostics).
"""

from __future__ import annotations

import argparse
import json

from flow_planner_ros.cli.common import check_output_file, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diagnose", description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--report", required=True, help="JSON report to write")
    parser.add_argument("--plots", default=None, help="directory for PNG plots of generated vs ground truth")
    parser.add_argument("--num", type=int, default=64, help="trajectories to evaluate")
    parser.add_argument("--steps", type=int, default=None, help="integration steps (default: checkpoint's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perturbation", type=float, default=0.1, help="goal/start perturbation, rad")
    args = parser.parse_args(argv)

    def body() -> int:
        import torch

        from flow_planner_common.atomic_file import write_json
        from flow_planner_ros.learning.diagnostics import diagnose

        torch.set_num_threads(2)
        if args.num < 1:
            raise ValueError("--num must be >= 1")
        check_output_file(args.report, "--report")
        report = diagnose(args.checkpoint, args.data, args.num, args.steps, args.seed, args.perturbation, args.plots)
        write_json(args.report, report)
        summary = {k: v for k, v in report.items() if isinstance(v, float)}
        print(json.dumps(summary, indent=2))
        return 0

    return run_cli("diagnose", body)


if __name__ == "__main__":
    raise SystemExit(main())
