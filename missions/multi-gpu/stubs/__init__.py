"""Your package for the `multi-gpu` mission: data parallelism by hand, on real processes.

Write, in this order (brief.md): allreduce -> ddp -> accumulation -> zero -> accel_train -> memory,
then the bonus tensor_parallel and pipeline. model.py and train.py are given: the small GPT every
check trains, and the 2-rank training run behind `llm-lab train multi-gpu`.
"""
