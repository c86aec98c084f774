"""Keep the server route's secret out of every log line that could carry a request path.

Filters on the loggers themselves (not on handlers), so every handler sees the masked
line: the host project's, pytest's, gunicorn's access log.
"""

from __future__ import annotations

import logging

from consent_service.proxy.routes import mask_server_secret

# Django's request and runserver logs, gunicorn's access and error logs.
PATH_LOGGERS = ("django.request", "django.server", "gunicorn.access", "gunicorn.error")


class MaskServerSecret(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken record: the handler reports it
            return True
        masked = mask_server_secret(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install() -> None:
    for name in PATH_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskServerSecret) for f in logger.filters):
            logger.addFilter(MaskServerSecret())
