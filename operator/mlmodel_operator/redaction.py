"""No credential in anything the operator writes: status conditions, Events and log lines.

A URI with userinfo is refused at admission, but a message can still carry one from elsewhere (a pod's
termination message, an API server error quoting a value, an older MLModel admitted before the rule).
The rule is the contract's, one source for the fetcher and the operator: userinfo-shaped text ("//user:password@") is replaced,
whatever the URI around it looks like.
"""

from __future__ import annotations

import logging

from mlmodel_contract.redaction import redact_userinfo as redact

__all__ = ["install_log_redaction", "redact"]


def install_log_redaction() -> None:
    """Redact every log record (the operator's, kopf's, the client's) when it is made, before any handler,
    formatter or kopf's event poster sees it."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", False):
        return

    def redacting_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: leave the record for logging's own error report
            return record
        if "@" in message:
            record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    redacting_record.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_record)
