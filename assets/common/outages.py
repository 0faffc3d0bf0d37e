"""lakeFS outages during a materialization: a clear failure, and a retry of the whole step.

A tier writes on its own write-audit-publish branch and merges into main atomically, so a
step that loses lakeFS half-way has changed nothing on main. Retrying the step is therefore
safe: it starts a fresh branch from main, and the content-addressed caches mean the videos it
already analysed are not analysed again. Only outages are retried (connection refused, reset,
timeouts, 5xx); a failed audit or a bug fails the step at once.
"""

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import urllib3.exceptions
from dagster import Failure, RetryRequested
from lakefs.exceptions import ServerException

# urllib3 wraps a refused or reset connection in MaxRetryError; the SDK raises ServerException for 5xx.
_OUTAGES = (urllib3.exceptions.HTTPError, ConnectionError, ServerException)


def lakefs_outage(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) means lakeFS could not be reached or answered 5xx."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _OUTAGES):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def retry_settings() -> tuple[int, float]:
    """(retries, first wait in seconds): VCURATE_LAKEFS_RETRIES, VCURATE_LAKEFS_RETRY_WAIT_S."""
    return (int(os.environ.get("VCURATE_LAKEFS_RETRIES", "3")),
            float(os.environ.get("VCURATE_LAKEFS_RETRY_WAIT_S", "15")))


def retry_on_lakefs_outage(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Decorate an asset's generator body (which takes the `lakefs` resource): a lakeFS outage
    becomes a clear Failure that Dagster retries, the wait doubling each time."""

    @functools.wraps(fn)  # keeps the signature Dagster reads for context and resources
    def body(context, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from fn(context, *args, **kwargs)
        except Exception as exc:
            if not lakefs_outage(exc):
                raise
            retries, wait = retry_settings()
            attempt = context.retry_number
            what = f"{context.asset_key.to_user_string()} {context.partition_key}"
            message = (f"{what}: lakeFS at {kwargs['lakefs'].endpoint} is unavailable "
                       f"({type(exc).__name__}: {str(exc)[:300]}). Nothing was merged into "
                       f"main; the step's branch is abandoned.")
            if attempt < retries:
                seconds = wait * 2 ** attempt
                context.log.warning(f"{message} Retry {attempt + 1} of {retries} in {seconds:.0f} s.")
                raise RetryRequested(max_retries=retries, seconds_to_wait=seconds) from exc
            raise Failure(description=f"{message} Gave up after {retries} retries; run the "
                                      f"partition again once lakeFS is back.",
                          allow_retries=False) from exc

    body.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return body
