"""synthetic_data --num N --out FILE [--seed S] [--dt DT]: linear start→goal sanity set in the trajectory schema."""

from __future__ import annotations

import argparse

from flow_planner_common.robot import DEFAULT_DT
from flow_planner_ros.cli.common import run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synthetic_data", description=__doc__)
    parser.add_argument("--num", type=int, required=True, help="number of trajectories")
    parser.add_argument("--out", required=True, help="merged dataset file to write (.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dt", type=float, default=DEFAULT_DT, help="time between waypoints, s")
    args = parser.parse_args(argv)

    def body() -> int:
        from flow_planner_ros.learning.synthetic import write_synthetic_dataset

        if args.num < 1:
            raise ValueError("--num must be >= 1")
        if args.dt <= 0:
            raise ValueError("--dt must be > 0")
        path = write_synthetic_dataset(args.out, args.num, args.seed, args.dt)
        print(f"wrote {args.num} synthetic trajectories to {path}")
        return 0

    return run_cli("synthetic_data", body)


if __name__ == "__main__":
    raise SystemExit(main())
