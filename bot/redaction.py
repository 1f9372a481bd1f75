"""Keep secrets out of every log record, whoever logs it.

The Bot API URL contains the token, and PTB (debug), httpx (info) and exception texts
repeat that URL; a record factory scrubs message and traceback text as records are made,
so no handler, formatter or test capture ever sees the secret.

A record is frozen as the text it had when it was made: PTB logs the result of getFile and
then completes its `file_path` (in the same dict) with the file URL, token included, so a
handler that formats later (a test capture, a `MemoryHandler`) would otherwise see the token.
httpx writes URLs percent-encoded (`:` as `%3A`), so each secret's encoded form is masked too.
"""

import logging
from urllib.parse import quote

MASK = "[REDACTED]"
_secrets: set[str] = set()
_installed = False


def redact_in_logs(*secrets: str) -> None:
    """Mask each non-empty secret in all log records from now on (safe to call repeatedly)."""
    global _installed
    _secrets.update(form for s in secrets if s for form in (s, quote(s, safe="")))
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
    """Freeze `record`'s message as it reads now, with secrets masked; mask its traceback."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed record: let logging report it as usual
        return
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
