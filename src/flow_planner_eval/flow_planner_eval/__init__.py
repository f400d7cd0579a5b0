"""flow_planner_eval: closed-loop evaluation of the planners on held-out scenes, through the MuJoCo bridge.

episodes_file (episodes YAML, written by make_scenes) → runner (reach → attach → carry per episode, the collector's
own episode sequence) over harness (the bridge in-process, the planner node in its own process: planner_process)
→ metrics (per phase and summary) → compare (straight, flow best-of-N, CEM budgets in one run) → plots, media;
pipeline_meta writes the comparison into the shipped checkpoint's metadata. Depends on flow_planner_ros and
data_collector_ros; neither depends on it.
"""
