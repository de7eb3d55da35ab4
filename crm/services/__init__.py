"""Business logic between the views/CLI and the models."""
