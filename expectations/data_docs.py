"""Great Expectations Data Docs: GX's static site of the suites and their results.

The runner validates a table in batches and merges the batches' results into one
result per expectation for the whole table, as GX reports a whole frame.
:func:`write_data_docs` stores those as one validation result per table, in a
fresh ephemeral GX context whose only Data Docs site is a folder, and has GX
build the site (``index.html`` at its root, a page per suite and per validation
result), as a Checkpoint's ``UpdateDataDocsAction`` does. What differs from a
Checkpoint over the whole frame: the batch markers hold no
``pandas_data_fingerprint`` (no single frame held the table). A fresh context
per call keeps the site to that call's suites and results, so calls with
different folders never mix; a folder used again gets a new index of the new
results (pages written before stay on disk, unlinked).
GX contexts are not thread-safe: every use of GX in this package holds
:data:`GX_LOCK`.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
from great_expectations.core.batch import LegacyBatchDefinition
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.id_dict import IDDict
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.validator.validation_statistics import calc_validation_statistics

#: Held around every use of Great Expectations in this process (re-entrant).
GX_LOCK = threading.RLock()

SITE_NAME = "cdcompact"
_DATASOURCE = "cdcompact"
#: GX's format of a batch's load time (batch markers).
_LOAD_TIME = "%Y%m%dT%H%M%S.%fZ"


def docs_context(directory: Path) -> AbstractDataContext:
    """A new ephemeral context, without progress bars, whose Data Docs go to ``directory``."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
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


def _of_batch(configuration: Any, table: str) -> Any:
    """A result's expectation as GX shows it: with the id of the batch it judged."""
    configuration = copy.deepcopy(configuration)
    configuration.kwargs["batch_id"] = f"{_DATASOURCE}-{table}"
    return configuration


def write_data_docs(
    runs: Mapping[str, tuple[gx.ExpectationSuite, Sequence[ExpectationValidationResult]]],
    directory: Path,
    run_name: str = "cdcompact",
) -> None:
    """Write the Data Docs site of ``table: (suite, results)`` into ``directory`` (created
    if needed): the suites, and one validation result per table whose results are the
    suite's expectations' results on the whole table, in GX's order.

    All results share one run id (``run_name``, now), so the site's index groups them.
    """
    target = Path(directory).resolve()
    target.mkdir(parents=True, exist_ok=True)
    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    with GX_LOCK:
        context = docs_context(target)
        context.data_sources.add_pandas(_DATASOURCE)
        identifiers: list[Any] = []
        for table, (suite, results) in runs.items():
            suite = context.suites.add(suite)
            results = [
                ExpectationValidationResult(
                    success=result.success,
                    expectation_config=_of_batch(result.expectation_config, table),
                    result=result.result,
                    exception_info=result.exception_info,
                )
                for result in results
            ]
            batch = LegacyBatchDefinition(
                datasource_name=_DATASOURCE,
                data_connector_name="fluent",
                data_asset_name=table,
                batch_identifiers=IDDict({"dataframe": "<DATAFRAME>"}),
            )
            statistics = calc_validation_statistics(results)
            validation = ExpectationSuiteValidationResult(
                results=results,
                success=statistics.success,
                suite_name=suite.name,
                statistics={
                    "evaluated_expectations": statistics.evaluated_expectations,
                    "successful_expectations": statistics.successful_expectations,
                    "unsuccessful_expectations": statistics.unsuccessful_expectations,
                    "success_percent": statistics.success_percent,
                },
                meta={
                    "great_expectations_version": gx.__version__,
                    "batch_spec": {"batch_data": "PandasDataFrame"},
                    "batch_markers": {"ge_load_time": run_id.run_time.strftime(_LOAD_TIME)},
                    "active_batch_definition": batch.to_json_dict(),
                    "checkpoint_id": None,
                    "run_id": run_id,
                    "validation_time": run_id.run_time,
                    "batch_parameters": {"dataframe": "<DATAFRAME>"},
                },
                batch_id=str(batch.id),
            )
            suite_id = ExpectationSuiteIdentifier(name=suite.name)
            result_id = ValidationResultIdentifier(
                expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=batch.id
            )
            context.validation_results_store.store_validation_results(
                validation, result_id, suite_id
            )
            identifiers.extend([result_id, suite_id])
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=identifiers)
