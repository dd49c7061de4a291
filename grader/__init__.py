"""llm-lab: grader."""
