"""Training runs seen from the lab: the child process (job), its metrics (tailer), the device
(telemetry). Nothing here imports torch or runs learner code."""
