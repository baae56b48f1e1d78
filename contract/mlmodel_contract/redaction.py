"""The one credential rule both sides apply: userinfo-shaped text never reaches a log, message or status.

Userinfo is whatever sits between "//" and the last "@" of an authority, whatever the scheme, and with none
at all: "//user:password@host/path" is a scheme-relative URI with a password in it. ("file:///a@b" has an
empty authority: a third slash is a path, not userinfo.) The fetcher applies it to its lines and termination
messages, the operator to its conditions, Events and log records.
"""

from __future__ import annotations

import re

REDACTED = "REDACTED"

_USERINFO = re.compile(r"(?<=//)(?<!///)[^/?#\s]*@")


def redact_userinfo(text: str) -> str:
    """Replace every userinfo-shaped run ("//user:password@") in `text`, wherever it is, with REDACTED."""
    return _USERINFO.sub(f"{REDACTED}@", text) if "@" in text else text
