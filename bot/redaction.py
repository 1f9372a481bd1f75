"""Keep secrets out of every log record, whoever logs it.

The Bot API URL contains the token, and PTB (debug), httpx (info) and exception texts
repeat that URL; a record factory scrubs message and traceback text as records are made,
so no handler, formatter or test capture ever sees the secret.
"""

import logging

MASK = "[REDACTED]"
_secrets: set[str] = set()
_installed = False


def redact_in_logs(*secrets: str) -> None:
    """Mask each non-empty secret in all log records from now on (safe to call repeatedly)."""
    global _installed
    _secrets.update(s for s in secrets if s)
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def scrub(record: logging.LogRecord) -> None:
    """Replace secrets in `record`'s message and exception text, in place."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed record: let logging report it as usual
        return
    if any(secret in message for secret in _secrets):
        record.msg, record.args = mask(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        if any(secret in text for secret in _secrets):
            record.exc_text = mask(text)


def mask(text: str) -> str:
    """`text` with every registered secret replaced (for text that is printed, not logged)."""
    for secret in _secrets:
        text = text.replace(secret, MASK)
    return text
