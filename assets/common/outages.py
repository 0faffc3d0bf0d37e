"""lakeFS outages during a materialization: a clear failure, and a retry of the whole step.

A tier writes on its own write-audit-publish branch and merges into main atomically, so a
step that loses lakeFS half-way has changed nothing on main. Retrying the step is therefore
safe: it starts a fresh branch from main, and the content-addressed caches mean the videos it
already analysed are not analysed again. Only outages are retried (connection refused, reset,
timeouts, 5xx). A refusal (any other 4xx: wrong credentials, a conflict, a missing ref), a
missing repository, a failed audit or a bug fails the step at once.
"""

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import lakefs_sdk
import urllib3.exceptions
from dagster import Failure, RetryRequested
from lakefs.exceptions import ServerException

from resources.lakefs import LakeFSResource, RepositoryMissingError
from resources.redact import redact

# No answer at all: urllib3 wraps a refused or reset connection in MaxRetryError.
_UNREACHABLE = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
# ServerException is the SDK's base of every API error (NotFound, NotAuthorized, Conflict, ...),
# so its status decides: 0 (no HTTP answer, e.g. TLS), 5xx, request timeout and rate limiting
# are transient; every other 4xx is a refusal that a retry would only repeat.
_TRANSIENT_4XX = {408, 429}
_REFUSALS = {
    400: "rejected the request as invalid (400)",
    401: "refused the credentials (401): check LAKECTL_CREDENTIALS_ACCESS_KEY_ID and "
         "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    403: "denied the operation (403): the access key lacks a permission this step needs",
    404: "has no such repository, branch, commit or object (404)",
    409: "reported a conflict (409): a merge conflict, a branch with uncommitted changes or a "
         "name that already exists",
    412: "refused a precondition (412): the object or branch changed meanwhile",
}


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        yield exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a lakeFS API error (the SDK's or the generated client's), else None."""
    if isinstance(exc, ServerException):
        return exc.status_code or 0
    if isinstance(exc, lakefs_sdk.ApiException):
        return exc.status or 0
    return None


def lakefs_outage(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) means lakeFS could not be reached, timed out or
    answered 5xx; False for a refusal (4xx), which fails the step at once."""
    for link in _chain(exc):
        status = _status(link)
        if status is not None:  # the first API error in the chain is what lakeFS answered
            return status == 0 or status >= 500 or status in _TRANSIENT_4XX
        if isinstance(link, _UNREACHABLE):
            return True
    return False


def lakefs_refusal(exc: BaseException, lakefs: LakeFSResource) -> str | None:
    """What lakeFS refused, naming status, endpoint and repository (never the credentials);
    None when `exc` holds no lakeFS 4xx."""
    if lakefs_outage(exc):
        return None
    for link in _chain(exc):
        status = _status(link)
        if status is None:
            continue
        what = _REFUSALS.get(status, f"refused the request ({status})")
        body = getattr(link, "body", None)
        said = body.get("message") if isinstance(body, dict) else None
        return redact(f"lakeFS at {lakefs.endpoint} {what}; repository '{lakefs.repository}'"
                      + (f"; lakeFS said: {str(said)[:300]}" if said else "") + ".",
                      lakefs.secret_access_key)
    return None


def retry_settings() -> tuple[int, float]:
    """(retries, first wait in seconds): VCURATE_LAKEFS_RETRIES, VCURATE_LAKEFS_RETRY_WAIT_S."""
    return (int(os.environ.get("VCURATE_LAKEFS_RETRIES", "3")),
            float(os.environ.get("VCURATE_LAKEFS_RETRY_WAIT_S", "15")))


def retry_on_lakefs_outage(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Decorate an asset's generator body (which takes the `lakefs` resource): a lakeFS outage
    becomes a clear Failure that Dagster retries, the wait doubling each time."""

    @functools.wraps(fn)  # keeps the signature Dagster reads for context and resources
    def body(context, *args: Any, **kwargs: Any) -> Iterator[Any]:
        lakefs: LakeFSResource = kwargs["lakefs"]
        what = f"{context.asset_key.to_user_string()} {context.partition_key}"
        try:
            lakefs.require_repository()  # a lost repository fails here, before any work is done
            yield from fn(context, *args, **kwargs)
        except RepositoryMissingError as exc:
            raise Failure(description=redact(f"{what}: {exc}", lakefs.secret_access_key),
                          allow_retries=False) from exc
        except Exception as exc:
            if not lakefs_outage(exc):
                refusal = None if isinstance(exc, Failure) else lakefs_refusal(exc, lakefs)
                if refusal is None:
                    raise
                raise Failure(description=f"{what}: {refusal}", allow_retries=False) from exc
            retries, wait = retry_settings()
            attempt = context.retry_number
            # Failure texts are stored in Dagster's event log: no endpoint credentials in them.
            message = redact(f"{what}: lakeFS at {lakefs.endpoint} is unavailable "
                             f"({type(exc).__name__}: {str(exc)[:300]}). Nothing was merged into "
                             f"main; the step's branch is abandoned.", lakefs.secret_access_key)
            if attempt < retries:
                seconds = wait * 2 ** attempt
                context.log.warning(f"{message} Retry {attempt + 1} of {retries} in {seconds:.0f} s.")
                raise RetryRequested(max_retries=retries, seconds_to_wait=seconds) from exc
            raise Failure(description=f"{message} Gave up after {retries} retries; run the "
                                      f"partition again once lakeFS is back.",
                          allow_retries=False) from exc

    body.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return body
