"""Structured logs, one schema for the whole image: one JSON object per line on stderr with `time`, `level`,
`logger`, `pid` and `message`, then the event's own fields (and `exception`, with its traceback, when there
is one). The serve step (the app, gunicorn, granian) writes its lines through the logging module and
`JsonFormatter`; the fetch step, a short-lived process, writes its own with `event_line` (fetch/logs.py)."""

import logging
import os
import time
from typing import Any

import orjson

# Attributes every LogRecord has; anything else was passed through `extra=` and goes into the line.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def json_line(time_text: str, level: str, logger: str, pid: int | None, message: str, fields: dict[str, Any]) -> str:
    line: dict[str, Any] = {"time": time_text, "level": level, "logger": logger, "pid": pid, "message": message}
    line.update(fields)
    return orjson.dumps(line, default=str).decode()


def event_line(logger: str, level: str, message: str, fields: dict[str, Any]) -> str:
    """A line in the schema for a process that writes its events itself rather than through logging."""
    now = time.time()
    return json_line(f"{utc_second(int(now))}.{int(now % 1 * 1000):03d}Z", level, logger, os.getpid(), message, fields)


class JsonFormatter(logging.Formatter):
    _second: int = -1
    _second_text: str = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime per second, not per line (racing threads write the same value)
            self._second_text = utc_second(second)
            self._second = second
        return self._second_text

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            key: value
            for key, value in record.__dict__.items()
            if key not in STANDARD_ATTRIBUTES and not key.startswith("_")
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_line(
            f"{self._timestamp(record)}.{int(record.msecs):03d}Z",
            record.levelname.lower(),
            record.name,
            record.process,
            record.getMessage(),
            fields,
        )


def logging_config(level: str) -> dict[str, Any]:
    """A dictConfig for gunicorn's `logconfig_dict`, so its own lines are JSON too."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def skip_unused_record_fields() -> None:
    """The JSON lines never show a record's source file, function, thread or process name: don't let the
    logging module look them up for every record (the switches the logging HOWTO's "Optimization" lists)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def configure(level: str) -> None:
    import logging.config

    skip_unused_record_fields()
    logging.config.dictConfig(logging_config(level))
    logging.captureWarnings(True)  # library warnings become JSON lines too, not bare stderr text
