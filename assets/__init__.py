"""cdcompact stages: pure functions per stage beside thin Dagster wrappers.

Pure modules (parse, harmonise, compute) never import Dagster; the
``assets.py`` module of each stage holds the Dagster definitions.
"""
