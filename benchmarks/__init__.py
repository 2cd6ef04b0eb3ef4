"""Benchmarks (make bench): they print figures and are never run by the tests."""
