from __future__ import annotations

import ipaddress
import os
from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register

from consent_service.core.defaults import setting
from consent_service.core.metrics import multiprocess_dir


@register()
def check_metrics_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for value in setting("CONSENT_METRICS_ALLOWED_NETWORKS"):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            message = f"CONSENT_METRICS_ALLOWED_NETWORKS: {value!r} is not an IP network."
            errors.append(Error(message, id="consent_ops.E001"))
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ and not multiprocess_dir():
        # prometheus-client turns its multiprocess mode on when the variable merely exists.
        message = (
            "PROMETHEUS_MULTIPROC_DIR is set but empty: metric files go to the working "
            "directory and /metrics shows this process only. Unset it or name a directory."
        )
        errors.append(Warning(message, id="consent_ops.W001"))
    return errors
