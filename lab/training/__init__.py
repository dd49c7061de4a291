"""Training runs, seen from the lab: everything behind `llm-lab train` and the Train screen.

    command.py          `llm-lab train`: checks the arguments, then the screen or --headless
    headless.py         --headless: a progress bar on a terminal, plain lines in CI logs
    screen.py           the Train screen (and TrainApp, the screen alone for `llm-lab train`)
    job.py              the training job: the run's child process (start, stop, finalize)
    metrics_stream.py   reading the run's metrics.jsonl and output.log back (tailers, RunSummary)
    device_sampling.py  what the GPU (NVML) or CPU (psutil) is doing, sampled in a thread
    formatting.py       numbers as shown (1.2k tok/s, 38.5%, 4.0 GiB)
    widgets/            the screen's panels: loss plot, metric cards, memory gauges, run status

Nothing here imports torch or runs learner code: the run's child process does both.
"""
