"""Progress logs: one JSON object per line on stderr (`ts`, `level`, `msg`, then the event's own fields).

Only the final failure line is plain text (see `mlmodel_server.termination.report`). Callers pass only
redacted URIs and never credential values; userinfo-shaped text is redacted here once more, whatever
passed it.
"""

import json
import sys
from datetime import datetime, timezone

from mlmodel_server.fetch.redaction import redact_userinfo


def log(level: str, msg: str, **fields: object) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level, "msg": msg}
    record.update(fields)
    print(redact_userinfo(json.dumps(record, default=str)), file=sys.stderr, flush=True)


def info(msg: str, **fields: object) -> None:
    log("info", msg, **fields)


def warning(msg: str, **fields: object) -> None:
    log("warning", msg, **fields)
