"""Segments: saved audiences built from a JSON condition language (definition), compiled to one
SQL query (compile), stored, counted and recorded day by day (store)."""
