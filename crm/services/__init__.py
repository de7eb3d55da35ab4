"""Domain rules. Pure functions where possible; one place per rule (see DESIGN.md)."""
