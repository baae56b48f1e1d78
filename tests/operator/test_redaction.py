"""The operator's own log lines carry no userinfo, whoever logs them (the operator, kopf, the client)."""

from __future__ import annotations

import logging

from mlmodel_operator.redaction import install_log_redaction


def test_log_records_are_redacted_when_they_are_made(caplog) -> None:
    previous = logging.getLogRecordFactory()
    install_log_redaction()
    install_log_redaction()  # idempotent: one wrapper, not two
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("kopf.objects").warning("cannot apply %s: %s", "iris", "uri //u:hunter2@h/m")
            try:
                raise ValueError("fetch of https://alice:pw-secret@h/m failed")
            except ValueError:
                logging.getLogger("mlmodel_operator").exception("reconcile failed")
        text = caplog.text
    finally:
        logging.setLogRecordFactory(previous)

    assert "hunter2" not in text and "pw-secret" not in text and "alice" not in text
    assert "cannot apply iris: uri //REDACTED@h/m" in text
    assert "https://REDACTED@h/m failed" in text
