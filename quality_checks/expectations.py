"""Great Expectations 1.x suites run inside asset checks.

GX takes seconds to import, so it is imported here, on first use, never at module load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class SuiteOutcome:
    success: bool
    evaluated: int
    failures: list[str] = field(default_factory=list)

    def failures_markdown(self) -> str:
        return "\n".join(f"- {line}" for line in self.failures) or "none"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def run_suite(
    name: str, df: pd.DataFrame, expectations: list[tuple[str, dict[str, Any]]]
) -> SuiteOutcome:
    """Validate `df` against `(expectation_type, kwargs)` pairs with an ephemeral GX context.

    A `where=(column, "==" | "!=", value)` kwarg limits an expectation to matching rows.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home from checks
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.row_conditions import Column

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
    )
    suite = gx.ExpectationSuite(name=name)
    for expectation_type, kwargs in expectations:
        if "where" in kwargs:
            kwargs = dict(kwargs)
            column, op, value = kwargs.pop("where")
            kwargs["row_condition"] = (Column(column) == value if op == "==" else
                                       Column(column) != value)
        suite.add_expectation(getattr(gx.expectations, _camel(expectation_type))(**kwargs))
    result = batch_definition.get_batch(batch_parameters={"dataframe": df}).validate(suite)
    failures = []
    for item in result.results:
        if not item.success:
            config = item.expectation_config
            observed = item.result.get("partial_unexpected_list", item.result.get("observed_value"))
            failures.append(f"{config.type} on {config.kwargs.get('column')}: "
                            f"unexpected {observed}")
    return SuiteOutcome(bool(result.success), len(result.results), failures)
