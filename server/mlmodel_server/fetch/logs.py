"""Progress logs: one JSON object per line on stderr, in the serve step's schema (`time`, `level`, `logger`,
`pid`, `message`, then the event's own fields): the fetch and serve steps of a pod write one log schema.

Only the final failure line is plain text (see `mlmodel_server.termination.report`). Callers pass only
redacted URIs and never credential values; userinfo-shaped text is redacted here once more, whatever
passed it.
"""

import logging
import sys

from mlmodel_server.fetch.redaction import redact_userinfo
from mlmodel_server.logs import JsonFormatter

LOGGER_NAME = "mlmodel_server.fetch"
_formatter = JsonFormatter()


def log(level: str, msg: str, **fields: object) -> None:
    record = logging.LogRecord(LOGGER_NAME, logging.getLevelName(level.upper()), __file__, 0, msg, None, None)
    record.__dict__.update(fields)
    print(redact_userinfo(_formatter.format(record)), file=sys.stderr, flush=True)


def info(msg: str, **fields: object) -> None:
    log("info", msg, **fields)


def warning(msg: str, **fields: object) -> None:
    log("warning", msg, **fields)
