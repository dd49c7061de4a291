"""llm-lab: missions."""
