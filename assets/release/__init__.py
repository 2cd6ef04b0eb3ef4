"""The publishing stage's Dagster wrapper (the logic is in the top-level publish/ package)."""
