#!/usr/bin/env bash
# The default checkpoint's pipeline, from nothing: collect -> merge -> train -> evaluate (flow and CEM).
#
#   tools/pipeline.sh [--ship] [WORK_DIR]        (default WORK_DIR: runs/pipeline)
#
# Stages (each resumes: collection skips finished grid indices, training resumes from its state file):
#   1. collect  SHARDS collector processes over grid indices [0, EPISODES) of the collector's 10 x 10 tray grid
#               (config/collector.yaml; each index = one episode = a reach and a carry trajectory, so the data set
#               has 2 * EPISODES trajectories) -> WORK_DIR/expert/traj_*.npz
#               COLLECT=ray: one `collect_ray` run instead (Ray tasks, SHARDS workers; the same files), on a local
#               Ray instance or, with RAY_ADDRESS=HOST:PORT, on that cluster (WORK_DIR must then be shared)
#   2. merge    -> WORK_DIR/expert.npz (validated, stacked)
#   3. train    config/flow_config.yaml, EPOCHS epochs -> WORK_DIR/default.safetensors (+ .log.csv);
#               TRAIN_NPROC=N > 1: under torchrun with N processes on this machine (DDP), TRAIN_DEVICE=cuda on GPUs
#   4. evaluate both planners on EVAL_EPISODES (held-out tray poses) -> WORK_DIR/eval/{flow,cem}.json, plots, video
#   5. metadata WORK_DIR/default.json: data set size and hash, training command, epochs, losses, evaluation summary
# --ship copies default.safetensors and default.json into src/flow_planner_ros/checkpoints/ (rebuild to install).
# Per-stage wall times go to WORK_DIR/stage_times.txt (and into the metadata).
#
# Environment overrides: EPISODES (1000), SHARDS (2), EPOCHS (30), SEED (0), EVAL_EPISODES
# (config/eval_episodes.yaml), EVAL_LIMIT (all), VIDEO_EPISODES (3), ROS_DOMAIN_ID (one derived from the PID),
# COLLECT (ros | ray), RAY_ADDRESS (none: a local Ray instance), TRAIN_NPROC (1), TRAIN_DEVICE (cpu),
# SCENES (flat: the tray-pose grid of the shipped model | family: the cluttered scene family).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHIP=0
WORK=""
for arg in "$@"; do
  case "$arg" in
    --ship) SHIP=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "pipeline: error: unknown option $arg" >&2; exit 2 ;;
    *) WORK="$arg" ;;
  esac
done
WORK="${WORK:-runs/pipeline}"
EPISODES="${EPISODES:-1000}"
SHARDS="${SHARDS:-2}"
EPOCHS="${EPOCHS:-30}"
SEED="${SEED:-0}"
EVAL_EPISODES="${EVAL_EPISODES:-config/eval_episodes.yaml}"
# flat = the old tray-pose grid the shipped (scene-blind) model is trained on; family = the cluttered scene family.
SCENES="${SCENES:-flat}"
VIDEO_EPISODES="${VIDEO_EPISODES:-3}"
COLLECT="${COLLECT:-ros}"
RAY_ADDRESS="${RAY_ADDRESS:-}"
TRAIN_NPROC="${TRAIN_NPROC:-1}"
TRAIN_DEVICE="${TRAIN_DEVICE:-cpu}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( $$ % 100 + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"

# The workspace environment (a no-op when the caller already sourced it).
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then source .venv/bin/activate; fi
if [[ -f install/setup.bash ]]; then set +u; source install/setup.bash; set -u; fi
BIN_DC="install/data_collector_ros/lib/data_collector_ros"
BIN_FP="install/flow_planner_ros/lib/flow_planner_ros"
for exe in "$BIN_DC/collector" "$BIN_DC/collect_ray" "$BIN_DC/merge" "$BIN_FP/train" "$BIN_FP/evaluate"; do
  [[ -x "$exe" ]] || { echo "pipeline: error: $exe missing: colcon build the workspace first" >&2; exit 2; }
done
for n in "$EPISODES" "$SHARDS" "$EPOCHS" "$TRAIN_NPROC"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || {
    echo "pipeline: error: EPISODES, SHARDS, EPOCHS, TRAIN_NPROC must be positive integers" >&2; exit 2; }
done
[[ "$COLLECT" == ros || "$COLLECT" == ray ]] || { echo "pipeline: error: COLLECT must be ros or ray" >&2; exit 2; }
[[ "$TRAIN_DEVICE" == cpu || "$TRAIN_DEVICE" == cuda ]] || {
  echo "pipeline: error: TRAIN_DEVICE must be cpu or cuda" >&2; exit 2; }
mkdir -p "$WORK/eval"
TIMES="$WORK/stage_times.txt"
: > "$TIMES"
stage() {  # stage NAME COMMAND...: run, time, log
  local name="$1"; shift
  local t0=$SECONDS
  echo "== pipeline: $name" >&2
  "$@"
  echo "$name $(( SECONDS - t0 ))" >> "$TIMES"
  echo "== pipeline: $name done in $(( SECONDS - t0 )) s" >&2
}

collect() {
  local per=$(( (EPISODES + SHARDS - 1) / SHARDS )) pids=() s start count
  for (( s = 0; s < SHARDS; s++ )); do
    start=$(( s * per )); count=$(( EPISODES - start < per ? EPISODES - start : per ))
    (( count > 0 )) || continue
    "$BIN_DC/collector" --ros-args --params-file config/collector.yaml -p output_dir:="$WORK/expert" \
      -p start_index:=$start -p count:=$count -p seed:="$SEED" -p scenes:="$SCENES" -p progress:=false \
      > "$WORK/collect_$s.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if (( failed )); then echo "pipeline: error: a collector shard failed (see $WORK/collect_*.log)" >&2; exit 1; fi
  grep -h "^collector: done" "$WORK"/collect_[0-9]*.log >&2 || true
}

collect_ray() {  # the same grid indices and files as collect(), as Ray tasks
  local address=()
  [[ -n "$RAY_ADDRESS" ]] && address=(--address "$RAY_ADDRESS")
  "$BIN_DC/collect_ray" --output-dir "$WORK/expert" --start-index 0 --count "$EPISODES" --seed "$SEED" \
    --num-workers "$SHARDS" --params-file config/collector.yaml --scenes "$SCENES" --no-progress "${address[@]}" \
    > "$WORK/collect_ray.log" 2>&1 || {
    echo "pipeline: error: collect_ray failed (see $WORK/collect_ray.log)" >&2; exit 1; }
  grep -h "^collect_ray: " "$WORK/collect_ray.log" >&2 || true
}

if [[ "$COLLECT" == ray ]]; then stage collect collect_ray; else stage collect collect; fi
stage merge "$BIN_DC/merge" --input "$WORK/expert" --output "$WORK/expert.npz"
TRAIN_CMD=("$BIN_FP/train" --data "$WORK/expert.npz" --config config/flow_config.yaml --out "$WORK/default.safetensors"
           --epochs "$EPOCHS" --seed "$SEED" --device "$TRAIN_DEVICE" --resume --no-progress)
if (( TRAIN_NPROC > 1 )); then  # DDP on this machine (torchrun picks a free port with --standalone)
  TRAIN_CMD=(python -m torch.distributed.run --standalone --nproc_per_node "$TRAIN_NPROC" "${TRAIN_CMD[@]}")
fi
stage train "${TRAIN_CMD[@]}"
evaluate_both() {
  local limit=()
  [[ -n "${EVAL_LIMIT:-}" ]] && limit=(--limit "$EVAL_LIMIT")
  "$BIN_FP/evaluate" --planner flow --checkpoint "$WORK/default.safetensors" --episodes "$EVAL_EPISODES" \
    --report "$WORK/eval/flow.json" --plots "$WORK/eval/plots_flow" --video "$WORK/eval" \
    --video-episodes "$VIDEO_EPISODES" --seed "$SEED" --quiet "${limit[@]}"
  "$BIN_FP/evaluate" --planner cem --episodes "$EVAL_EPISODES" --report "$WORK/eval/cem.json" \
    --plots "$WORK/eval/plots_cem" --video "$WORK/eval" --video-episodes "$VIDEO_EPISODES" --seed "$SEED" --quiet \
    "${limit[@]}"
}
stage evaluate evaluate_both
python -m flow_planner_ros.pipeline_meta --work "$WORK" --data "$WORK/expert.npz" \
  --checkpoint "$WORK/default.safetensors" --flow "$WORK/eval/flow.json" --cem "$WORK/eval/cem.json" \
  --times "$TIMES" --episodes "$EPISODES" --shards "$SHARDS" --train-command "${TRAIN_CMD[*]}" \
  --out "$WORK/default.json"
if (( SHIP )); then
  mkdir -p src/flow_planner_ros/checkpoints
  install -m 644 "$WORK/default.safetensors" src/flow_planner_ros/checkpoints/default.safetensors
  install -m 644 "$WORK/default.json" src/flow_planner_ros/checkpoints/default.json
  echo "== pipeline: shipped to src/flow_planner_ros/checkpoints/ (colcon build flow_planner_ros to install)" >&2
fi
