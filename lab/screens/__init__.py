"""The lab's screens, one per module (map, mission, help, confirm, reference, train)."""
