"""train --data FILE|DIR --config YAML --out CKPT [--epochs N] [--device cpu|cuda] [--resume] [--init CKPT]
[--learning-rate LR]: train a flow model, or fine-tune one (--init) on more data.

Writes CKPT (safetensors: EMA weights + normalization + metadata), CKPT.state.safetensors (resume) and
CKPT.log.csv (per-epoch losses).

Data-parallel on N processes (DDP; gloo on CPU, nccl with --device cuda, one GPU per process):
    torchrun --nproc_per_node N install/flow_planner_ros/lib/flow_planner_ros/train --data ... --out CKPT
Rank 0 alone logs and writes the files; the global batch is config's batch_size (split over the processes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flow_planner_ros.cli.common import check_output_file, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train", description=__doc__)
    parser.add_argument("--data", required=True, help="merged dataset file or directory of traj_*.npz")
    parser.add_argument("--config", default=None, help="flow_config.yaml (defaults built in when omitted)")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    parser.add_argument("--epochs", type=int, default=None, help="override training.epochs (total, also on resume)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--resume", action="store_true", help="continue from CKPT.state.safetensors if present")
    parser.add_argument("--seed", type=int, default=None, help="override training.seed")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="fine-tune this checkpoint (same model and flow config; its normalization is kept)")
    parser.add_argument("--learning-rate", type=float, default=None, help="override training.learning_rate (peak)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    args = parser.parse_args(argv)

    def body() -> int:
        from flow_planner_ros.learning import distributed
        from flow_planner_ros.learning.training import log_path, state_path, train
        from flow_planner_ros.learning.training_config import load_config

        training = {"seed": args.seed, "learning_rate": args.learning_rate}
        overrides = {"training": {k: v for k, v in training.items() if v is not None}}
        config = load_config(args.config, overrides)
        if args.init is not None and not Path(args.init).is_file():
            raise FileNotFoundError(f"--init: no checkpoint file {args.init}")
        if args.epochs is not None and args.epochs < 1:
            raise ValueError("--epochs must be >= 1")
        check_output_file(args.out, "--out")
        for extra in (state_path(args.out), log_path(args.out)):
            check_output_file(extra, "--out companion file")
        ctx = distributed.setup(args.device)
        try:
            result = train(args.data, config, args.out, args.epochs, args.device, args.resume, not args.no_progress,
                           dist_ctx=ctx, init=args.init)  # fmt: skip
        finally:
            distributed.teardown(ctx)
        if not ctx.is_main:
            return 0
        print(
            f"done: {result.epochs} epochs, train_loss {result.train_loss:.5f}, val_loss {result.val_loss:.5f}, "
            f"{result.samples_per_s:.0f} samples/s, {result.num_parameters:,} parameters -> {result.checkpoint}"
        )
        return 0

    return run_cli("train", body)


if __name__ == "__main__":
    raise SystemExit(main())
