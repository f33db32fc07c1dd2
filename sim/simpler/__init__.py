"""SimplerEnv bridge (ROS-free): action conversions (:mod:`.actions`), the task adapter (:mod:`.env`), its test
double (:mod:`.double`) and ground-truth instruction masks from the segmentation (:mod:`.masks`).

SimplerEnv (github simpler-env/SimplerEnv, on SAPIEN 2.2 and ManiSkill2_real2sim) is not on PyPI and is imported
lazily: nothing here needs it until an env is made."""
