"""Keep credentials out of what vcurate prints, stores as Dagster metadata or commits to lakeFS.

An endpoint may carry credentials as URL userinfo (`http://KEY:SECRET@host:port`), and client
libraries echo such URLs in their errors (botocore's "Could not connect to the endpoint URL").
Access key ids alone are identifiers, not secrets, so they are removed only as part of userinfo.
"""

from __future__ import annotations

import os
import re

# `scheme://userinfo@`: userinfo runs up to the last '@' before the host's end ('/', '?', '#',
# whitespace or a quote), as urllib parses it, so a raw '@' inside a password is covered too.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"<>]*@")
# The configured secrets (see .env): whatever else a text holds, these never appear in it.
SECRET_ENV_VARS = ("LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY", "VCURATE_S3_SECRET_ACCESS_KEY",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Shorter values would mask ordinary words; real secrets are far longer.
_MIN_SECRET_LENGTH = 8
MASK = "***"


def strip_userinfo(text: str) -> str:
    """`text` with the userinfo (user, password) removed from every URL in it."""
    return _USERINFO.sub(r"\g<scheme>", text)


def redact(text: str, *secrets: str | None) -> str:
    """`text` without URL userinfo and without any of `secrets` or the configured secrets."""
    known = {s for s in (*secrets, *(os.environ.get(name) for name in SECRET_ENV_VARS))
             if s and len(s) >= _MIN_SECRET_LENGTH}
    clean = strip_userinfo(text)
    for secret in sorted(known, key=len, reverse=True):  # longest first: one may contain another
        clean = clean.replace(secret, MASK)
    return clean
