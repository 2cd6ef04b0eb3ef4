"""Great Expectations Data Docs: validate through Checkpoints and write GX's static site.

:func:`validate_with_data_docs` runs one Checkpoint per table, each with an
``UpdateDataDocsAction``, in a fresh ephemeral GX context whose only Data Docs site
is a folder (``index.html`` at its root, a page per suite and per validation
result). A fresh context per call keeps the site to that call's suites and
results, so calls with different folders never mix; a folder used again gets
a new index of the new results (pages written before stay on disk, unlinked).
GX contexts are not thread-safe: every use of GX in this package holds
:data:`GX_LOCK`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig

#: Held around every use of Great Expectations in this process (re-entrant).
GX_LOCK = threading.RLock()

SITE_NAME = "cdcompact"
_DATASOURCE = "cdcompact"


def docs_context(directory: Path) -> AbstractDataContext:
    """A new ephemeral context, without progress bars, whose Data Docs go to ``directory``."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for name in list(context.list_data_docs_sites()):  # GX's default site, in a temp folder
        context.delete_data_docs_site(name)
    context.add_data_docs_site(
        site_name=SITE_NAME,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(directory),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def validate_with_data_docs(
    runs: Mapping[str, tuple[gx.ExpectationSuite, pd.DataFrame]],
    directory: Path,
    result_format: dict[str, Any],
    run_name: str = "cdcompact",
) -> dict[str, ExpectationSuiteValidationResult]:
    """Validate each ``table: (suite, frame)`` through a Checkpoint that updates the
    Data Docs site in ``directory`` (created if needed); the results by table.

    All results share one run id (``run_name``, now), so the site's index groups them.
    """
    target = Path(directory).resolve()
    target.mkdir(parents=True, exist_ok=True)
    results: dict[str, ExpectationSuiteValidationResult] = {}
    with GX_LOCK:
        context = docs_context(target)
        datasource = context.data_sources.add_pandas(_DATASOURCE)
        run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
        for table, (suite, frame) in runs.items():
            suite = context.suites.add(suite)
            asset = datasource.add_dataframe_asset(name=table)
            batch = asset.add_batch_definition_whole_dataframe(name=table)
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
            )
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=suite.name,
                    validation_definitions=[definition],
                    actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[SITE_NAME])],
                    result_format=result_format,
                )
            )
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
            (results[table],) = outcome.run_results.values()
    return results
