"""The Dagster code location (definitions, jobs, schedules, resources) and the CLI."""
