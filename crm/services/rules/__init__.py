"""The journey, health, scoring and to-do rules (pure), their defaults and settings, and the engine."""
