#!/usr/bin/env bash
# The default checkpoint's pipeline, from nothing: collect -> merge -> train -> evaluate (straight, flow, CEM in one run).
#
#   tools/pipeline.sh [--ship] [WORK_DIR]        (default WORK_DIR: runs/pipeline)
#
# Stages (each resumes: collection skips finished grid indices, training resumes from its state file):
#   1. collect  SHARDS collector processes over grid indices [0, EPISODES) of the scene family with seed SEED
#               (SCENES=family, the default; SCENES=flat: the old 10 x 10 tray grid of config/collector.yaml); each
#               index = one episode = a reach and a carry trajectory (invalid scenes are skipped), so the data set
#               has up to 2 * EPISODES trajectories -> WORK_DIR/expert/traj_*.npz
#               COLLECT=ray: one `collect_ray` run instead (Ray tasks, SHARDS workers; the same files), on a local
#               Ray instance or, with RAY_ADDRESS=HOST:PORT, on that cluster (WORK_DIR must then be shared)
#   2. merge    -> WORK_DIR/expert.npz (validated, stacked)
#   3. train    config/flow_config.yaml, EPOCHS epochs -> WORK_DIR/default.safetensors (+ .log.csv);
#               TRAIN_NPROC=N > 1: under torchrun with N processes on this machine (DDP), TRAIN_DEVICE=cuda on GPUs
#   3b. finetune (FINETUNE_EPISODES > 0; off by default: measured on the shipped model with 2400 bar indices and a
#               2800-index replay, 4 epochs at 1e-3, flow-8 went 34 -> 31 of the 40 held-out scenes, bar 4 -> 3 of 8,
#               so the shipped model is not fine-tuned): collect FINETUNE_EPISODES more grid indices from
#               FINETUNE_START on, of the family's FINETUNE_TEMPLATES only (collector parameter `templates`: the
#               templates every planner fails most) -> WORK/expert_extra; merge them with a replay of stage 1 (its
#               trajectories of grid indices < REPLAY_EPISODES) -> WORK/finetune.npz; fine-tune the stage-3
#               checkpoint on it (`train --init`, FINETUNE_EPOCHS at peak learning rate FINETUNE_LR; the
#               normalization stays the checkpoint's) -> WORK/finetuned.safetensors: the model stages 4-5 evaluate,
#               describe and ship
#   4. evaluate `evaluate_compare`, one run each, the same episodes for every planner configuration:
#               on EVAL_SCENES (held-out cluttered scenes, family seed 101: never trained on) straight, flow
#               best-of-1/8/32 (+ best-of-32 without refinement where the node has refine_iterations, + best-of-8
#               with the RRTConnect fallback), RRTConnect alone (2 s per phase) and CEM with iteration budgets 1, 2,
#               5 (default), 10 -> WORK_DIR/eval/compare.{json,md,png} (+ one report per
#               configuration, videos of straight, flow-8 and cem-5); then on EVAL_SCENES_2 (a second held-out
#               family seed, 202: generalisation beyond one seed; neither training nor EVAL_SCENES uses it) straight,
#               flow-8, cem-5 -> WORK_DIR/eval/compare_seed202.{json,md,png}; then on EVAL_EPISODES (today's flat
#               tray poses) straight, flow-8, cem-5 -> WORK_DIR/eval/compare_tray_poses.{json,md,png}
#   5. metadata WORK_DIR/default.json: data set size and hash, training command, epochs, losses, the comparison
#               tables of stage 4 (evaluation.held_out_scenes, evaluation.held_out_seed_2, evaluation.tray_poses)
#               and flow / cem / straight
# --ship copies default.safetensors and default.json into src/flow_planner_ros/checkpoints/ (rebuild to install).
# Per-stage wall times go to WORK_DIR/stage_times.txt (and into the metadata).
#
# Environment overrides: EPISODES (16800: ~10 600 valid family scenes, ~20 000 successful trajectories), SHARDS (2),
# EPOCHS (10: 5x the data of the 30-epoch recipe, more optimizer steps in all),
# SEED (0; not 101 or 202, the held-out seeds),
# EVAL_SCENES (config/eval_scenes_40.yaml), EVAL_LIMIT (all 40; 20 = config/eval_scenes.yaml's scenes),
# EVAL_SCENES_2 (config/eval_scenes_seed202.yaml, all 40; empty = skip),
# EVAL_EPISODES (config/eval_episodes.yaml), EVAL_TRAY_LIMIT (all 20; 0 = skip), VIDEO_EPISODES (2),
# ROS_DOMAIN_ID (one derived from the PID), COLLECT (ros | ray), RAY_ADDRESS (none: a local Ray instance),
# TRAIN_NPROC (1), TRAIN_DEVICE (cpu), SCENES (family: the cluttered scene family | flat: the old tray-pose grid),
# FINETUNE_EPISODES (0 = no stage 3b; e.g. 2400), FINETUNE_TEMPLATES (bar; comma-separated), FINETUNE_START (100000),
# REPLAY_EPISODES (2800), FINETUNE_EPOCHS (4), FINETUNE_LR (0.001).
# Stage 4 takes ~20-25 min on a 2-core CPU, plus ~5.5 min for EVAL_SCENES_2 (40 x (1.7 + 1.7 + 4.4) s + start-up;
# README, Evaluation: the cost per episode of each configuration).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHIP=0
WORK=""
for arg in "$@"; do
  case "$arg" in
    --ship) SHIP=1 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    -*) echo "pipeline: error: unknown option $arg" >&2; exit 2 ;;
    *) WORK="$arg" ;;
  esac
done
WORK="${WORK:-runs/pipeline}"
EPISODES="${EPISODES:-16800}"
SHARDS="${SHARDS:-2}"
EPOCHS="${EPOCHS:-10}"
SEED="${SEED:-0}"
EVAL_SCENES="${EVAL_SCENES:-config/eval_scenes_40.yaml}"
EVAL_SCENES_2="${EVAL_SCENES_2-config/eval_scenes_seed202.yaml}"  # set but empty = skip
EVAL_EPISODES="${EVAL_EPISODES:-config/eval_episodes.yaml}"
EVAL_TRAY_LIMIT="${EVAL_TRAY_LIMIT:-}"
# family = the cluttered scene family (seed SEED); flat = the old tray-pose grid of the first, scene-blind model.
SCENES="${SCENES:-family}"
VIDEO_EPISODES="${VIDEO_EPISODES:-2}"
COLLECT="${COLLECT:-ros}"
RAY_ADDRESS="${RAY_ADDRESS:-}"
TRAIN_NPROC="${TRAIN_NPROC:-1}"
TRAIN_DEVICE="${TRAIN_DEVICE:-cpu}"
FINETUNE_EPISODES="${FINETUNE_EPISODES:-0}"
FINETUNE_TEMPLATES="${FINETUNE_TEMPLATES:-bar}"
FINETUNE_START="${FINETUNE_START:-100000}"
REPLAY_EPISODES="${REPLAY_EPISODES:-2800}"
FINETUNE_EPOCHS="${FINETUNE_EPOCHS:-4}"
FINETUNE_LR="${FINETUNE_LR:-0.001}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( $$ % 100 + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"

# The workspace environment (a no-op when the caller already sourced it).
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then source .venv/bin/activate; fi
if [[ -f install/setup.bash ]]; then set +u; source install/setup.bash; set -u; fi
BIN_DC="install/data_collector_ros/lib/data_collector_ros"
BIN_FP="install/flow_planner_ros/lib/flow_planner_ros"
BIN_EV="install/flow_planner_eval/lib/flow_planner_eval"
for exe in "$BIN_DC/collector" "$BIN_DC/collect_ray" "$BIN_DC/merge" "$BIN_FP/train" "$BIN_EV/evaluate_compare"; do
  [[ -x "$exe" ]] || { echo "pipeline: error: $exe missing: colcon build the workspace first" >&2; exit 2; }
done
for n in "$EPISODES" "$SHARDS" "$EPOCHS" "$TRAIN_NPROC" "$FINETUNE_EPOCHS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || {
    echo "pipeline: error: EPISODES, SHARDS, EPOCHS, TRAIN_NPROC, FINETUNE_EPOCHS must be positive integers" >&2
    exit 2; }
done
for n in "$FINETUNE_EPISODES" "$FINETUNE_START" "$REPLAY_EPISODES"; do
  [[ "$n" =~ ^[0-9]+$ ]] || {
    echo "pipeline: error: FINETUNE_EPISODES, FINETUNE_START, REPLAY_EPISODES must be integers >= 0" >&2; exit 2; }
done
if (( FINETUNE_EPISODES > 0 )) && [[ "$SCENES" == flat ]]; then
  echo "pipeline: error: SCENES=flat has no templates to collect more of: set FINETUNE_EPISODES=0" >&2; exit 2
fi
if (( FINETUNE_EPISODES > 0 && FINETUNE_START < EPISODES )); then  # the extra scenes need grid indices of their own
  echo "pipeline: error: FINETUNE_START ($FINETUNE_START) must be >= EPISODES ($EPISODES)" >&2; exit 2
fi
[[ "$FINETUNE_TEMPLATES" =~ ^[a-z_]+(,[a-z_]+)*$ ]] || {
  echo "pipeline: error: FINETUNE_TEMPLATES must be comma-separated template names (e.g. bar,barrier)" >&2; exit 2; }
[[ "$FINETUNE_LR" =~ ^[0-9]*\.?[0-9]+([eE]-?[0-9]+)?$ ]] || {
  echo "pipeline: error: FINETUNE_LR must be a positive number" >&2; exit 2; }
[[ "$COLLECT" == ros || "$COLLECT" == ray ]] || { echo "pipeline: error: COLLECT must be ros or ray" >&2; exit 2; }
[[ "$SCENES" == family || "$SCENES" == flat ]] || { echo "pipeline: error: SCENES must be family or flat" >&2; exit 2; }
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "pipeline: error: SEED must be an integer >= 0" >&2; exit 2; }
if [[ "$SCENES" == family && ( "$SEED" == 101 || "$SEED" == 202 ) ]]; then  # held-out scenes would be training data
  echo "pipeline: error: SEED $SEED is a held-out evaluation seed (config/eval_scenes_40.yaml: 101," \
    "config/eval_scenes_seed202.yaml: 202)" >&2; exit 2
fi
for n in ${EVAL_LIMIT:-1} ${EVAL_TRAY_LIMIT:-0}; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "pipeline: error: EVAL_LIMIT, EVAL_TRAY_LIMIT must be integers" >&2; exit 2; }
done
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

collect() {  # collect [DIR FIRST COUNT LOG_PREFIX EXTRA_ROS_ARGS...]: SHARDS collector processes over the indices
  local dir="${1:-$WORK/expert}" first="${2:-0}" total="${3:-$EPISODES}" log="${4:-collect}"
  shift $(( $# < 4 ? $# : 4 ))
  local per=$(( (total + SHARDS - 1) / SHARDS )) pids=() s start count
  for (( s = 0; s < SHARDS; s++ )); do
    start=$(( s * per )); count=$(( total - start < per ? total - start : per ))
    (( count > 0 )) || continue
    "$BIN_DC/collector" --ros-args --params-file config/collector.yaml -p output_dir:="$dir" \
      -p start_index:=$(( first + start )) -p count:=$count -p seed:="$SEED" -p scenes:="$SCENES" \
      -p progress:=false "$@" > "$WORK/${log}_$s.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if (( failed )); then echo "pipeline: error: a collector shard failed (see $WORK/${log}_*.log)" >&2; exit 1; fi
  grep -h "^collector: done" "$WORK/${log}"_[0-9]*.log >&2 || true
}

replay() {  # the fine-tuning's replay: links to the stage-1 trajectories of grid indices < REPLAY_EPISODES
  rm -rf "$WORK/replay"; mkdir -p "$WORK/replay"
  local f index
  for f in "$WORK"/expert/traj_*.npz; do
    index="${f##*/traj_}"; index="${index%%_*}"
    (( 10#$index < REPLAY_EPISODES )) && ln -s "../expert/${f##*/}" "$WORK/replay/${f##*/}"
  done
  return 0
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
MODEL="$WORK/default.safetensors"
if (( FINETUNE_EPISODES > 0 )); then  # stage 3b: more of the hard templates, then fine-tune on them + a replay
  stage collect_extra collect "$WORK/expert_extra" "$FINETUNE_START" "$FINETUNE_EPISODES" collect_extra \
    -p "templates:=[$FINETUNE_TEMPLATES]"
  stage replay replay
  stage merge_finetune "$BIN_DC/merge" --input "$WORK/replay" "$WORK/expert_extra" --output "$WORK/finetune.npz"
  FINETUNE_CMD=("$BIN_FP/train" --data "$WORK/finetune.npz" --config config/flow_config.yaml --init "$MODEL"
                --out "$WORK/finetuned.safetensors" --epochs "$FINETUNE_EPOCHS" --learning-rate "$FINETUNE_LR"
                --seed "$SEED" --device "$TRAIN_DEVICE" --resume --no-progress)
  stage finetune "${FINETUNE_CMD[@]}"
  MODEL="$WORK/finetuned.safetensors"
fi
compare() {  # stage 4: the one-run comparisons (see the header)
  local limit=() video=()
  [[ -n "${EVAL_LIMIT:-}" ]] && limit=(--limit "$EVAL_LIMIT")
  (( VIDEO_EPISODES > 0 )) && video=(--video "$WORK/eval" --video-episodes "$VIDEO_EPISODES")
  "$BIN_EV/evaluate_compare" --checkpoint "$MODEL" --episodes "$EVAL_SCENES" \
    --report "$WORK/eval/compare.json" --seed "$SEED" --quiet "${limit[@]}" "${video[@]}"
  if [[ -n "$EVAL_SCENES_2" ]]; then  # a second held-out family seed: straight, flow-8, cem-5 only
    "$BIN_EV/evaluate_compare" --checkpoint "$MODEL" --episodes "$EVAL_SCENES_2" \
      --report "$WORK/eval/compare_seed202.json" --flow-samples 8 --flow-unrefined "" --flow-fallback "" \
      --rrt-time-limits "" --cem-budgets 5 --seed "$SEED" --quiet
  fi
  if [[ "$EVAL_TRAY_LIMIT" != 0 ]]; then
    limit=()
    [[ -n "$EVAL_TRAY_LIMIT" ]] && limit=(--limit "$EVAL_TRAY_LIMIT")
    "$BIN_EV/evaluate_compare" --checkpoint "$MODEL" --episodes "$EVAL_EPISODES" \
      --report "$WORK/eval/compare_tray_poses.json" --flow-samples 8 --flow-unrefined "" --flow-fallback "" \
      --rrt-time-limits "" --cem-budgets 5 \
      --seed "$SEED" --quiet "${limit[@]}"
  fi
}
stage evaluate compare
SEED_2_REPORT=()
[[ -n "$EVAL_SCENES_2" && -f "$WORK/eval/compare_seed202.json" ]] && \
  SEED_2_REPORT=(--compare-seed-2 "$WORK/eval/compare_seed202.json")
TRAY_REPORT=()
[[ -f "$WORK/eval/compare_tray_poses.json" && "$EVAL_TRAY_LIMIT" != 0 ]] && \
  TRAY_REPORT=(--compare-tray-poses "$WORK/eval/compare_tray_poses.json")
FINETUNE_META=()
if (( FINETUNE_EPISODES > 0 )); then
  EXTRA_END=$(( FINETUNE_START + FINETUNE_EPISODES ))
  FINETUNE_META=(--finetuned "$MODEL" --finetune-data "$WORK/finetune.npz" --finetune-command "${FINETUNE_CMD[*]}"
    --finetune-collector "grid indices [$FINETUNE_START, $EXTRA_END) of the templates [$FINETUNE_TEMPLATES], family \
seed $SEED, $SHARDS shards; replay: the stage-1 trajectories of grid indices < $REPLAY_EPISODES")
fi
python -m flow_planner_eval.pipeline_meta --work "$WORK" --data "$WORK/expert.npz" \
  --checkpoint "$WORK/default.safetensors" --compare "$WORK/eval/compare.json" "${SEED_2_REPORT[@]}" \
  "${TRAY_REPORT[@]}" "${FINETUNE_META[@]}" \
  --times "$TIMES" --episodes "$EPISODES" --shards "$SHARDS" --train-command "${TRAIN_CMD[*]}" \
  --out "$WORK/default.json"
if (( SHIP )); then
  mkdir -p src/flow_planner_ros/checkpoints
  install -m 644 "$MODEL" src/flow_planner_ros/checkpoints/default.safetensors
  install -m 644 "$WORK/default.json" src/flow_planner_ros/checkpoints/default.json
  echo "== pipeline: shipped to src/flow_planner_ros/checkpoints/ (colcon build flow_planner_ros to install)" >&2
fi
