"""What the collector, the planner and the evaluation share, and nothing that plans or collects: the robot
definition, the trajectory schema, the reference motion and its basis, ROS message builders, atomic files and
the node main. Importing it never loads MuJoCo, torch or the CEM expert."""
