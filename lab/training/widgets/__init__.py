"""The Train screen's panels, one per file (their styles are in lab/styles/train.tcss)."""
