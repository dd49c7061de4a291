"""Reference for the `multi-gpu` mission: data parallelism by hand, on real processes.

Read in this order: model (given) -> allreduce -> ddp -> accumulation -> zero -> accel_train ->
memory -> tensor_parallel -> pipeline; train runs the whole thing on 2 ranks. Every file that
talks to other ranks uses torch.distributed's collectives, which run over gloo on CPU processes
and over NCCL on GPUs, unchanged.
"""
