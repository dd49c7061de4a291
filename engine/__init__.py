"""llm-lab: engine."""
