"""Fetching from the real world: IATI datasets and reference data over HTTP, kept
content-addressed with a last-known-good state so that nothing is fetched or stored twice."""
