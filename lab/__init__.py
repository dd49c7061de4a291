"""llm-lab: lab."""
