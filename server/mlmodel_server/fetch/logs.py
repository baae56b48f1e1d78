"""Progress logs: one JSON object per line on stderr (`ts`, `level`, `msg`, then the event's own fields).

Only the final failure line is plain text (see `mlmodel_server.termination.report`). Callers pass only
redacted URIs and never credential values.
"""

import json
import sys
from datetime import datetime, timezone


def log(level: str, msg: str, **fields: object) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level, "msg": msg}
    record.update(fields)
    print(json.dumps(record, default=str), file=sys.stderr, flush=True)


def info(msg: str, **fields: object) -> None:
    log("info", msg, **fields)


def warning(msg: str, **fields: object) -> None:
    log("warning", msg, **fields)
