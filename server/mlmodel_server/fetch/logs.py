"""Progress logs of the fetch step, in the image's one log schema (mlmodel_server.logs).

Only the final failure line is plain text (see `mlmodel_server.termination.report`). Callers pass only
redacted URIs and never credential values; userinfo-shaped text is redacted here once more, whatever
passed it.
"""

import sys

from mlmodel_server.fetch.redaction import redact_userinfo
from mlmodel_server.logs import event_line

LOGGER_NAME = "mlmodel_server.fetch"


def log(level: str, msg: str, **fields: object) -> None:
    print(redact_userinfo(event_line(LOGGER_NAME, level, msg, fields)), file=sys.stderr, flush=True)


def info(msg: str, **fields: object) -> None:
    log("info", msg, **fields)


def warning(msg: str, **fields: object) -> None:
    log("warning", msg, **fields)
