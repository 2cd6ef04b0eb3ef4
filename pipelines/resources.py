"""The resources of cdcompact's Dagster code: the configuration file, and DuckDB (an
in-memory database with the ``warehouse`` section's memory limit, spill folder and
threads). Built once per code location by :func:`resources`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from assets.settings import Settings, load_settings
from assets.warehouse import connection_config


class CompactConfig(dg.ConfigurableResource):
    """The compact's configuration file (empty: $CDCOMPACT_CONFIG or config/compact.yaml),
    read and checked once per process that uses it (:func:`assets.settings.load_settings`)."""

    config_file: str = ""
    _settings: Settings | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file or None)
        return self._settings


def duckdb_resource(settings: Settings, database: str | Path = ":memory:") -> DuckDBResource:
    """``dagster_duckdb.DuckDBResource`` with the configured limits (the Dagster layer's
    way to the same connections as :func:`assets.warehouse.connect`; call
    :func:`assets.warehouse.set_up` on each)."""
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return DuckDBResource(database=str(database), connection_config=connection_config(settings))


def resources(settings: Settings) -> dict[str, Any]:
    """The resources of the assets: the configuration file, and DuckDB."""
    return {
        "compact": CompactConfig(config_file=str(settings.config_file)),
        "warehouse": duckdb_resource(settings),
    }
