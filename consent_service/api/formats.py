"""What our API reads and writes, fixed whatever the host project's REST_FRAMEWORK says.

DRF binds the JSON options (UNICODE_JSON, COMPACT_JSON, STRICT_JSON) to its renderer and
parser classes at import, and reads the URL format override, the date-time formats and the
view-name function from the host's settings at each request; these classes pin DRF's defaults.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework import ISO_8601, parsers, renderers, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.settings import DEFAULTS, IMPORT_STRINGS, APISettings

# DRF's own defaults. A non-empty user_settings is what keeps APISettings from reading the
# host's REST_FRAMEWORK; the two keys named are the ones our views and negotiation read.
drf_defaults = APISettings(
    user_settings={"URL_FORMAT_OVERRIDE": "format", "FORMAT_SUFFIX_KWARG": "format"},
    defaults=DEFAULTS,
    import_strings=IMPORT_STRINGS,
)


class JsonRenderer(renderers.JSONRenderer):
    ensure_ascii = False
    compact = True
    strict = True


class JsonParser(parsers.JSONParser):
    strict = True  # NaN and Infinity are not JSON


class SchemaJsonRenderer(OpenApiJsonRenderer):
    ensure_ascii = False
    compact = True
    strict = True


class SchemaJsonRenderer2(SchemaJsonRenderer):
    media_type = "application/json"  # as drf-spectacular's OpenApiJsonRenderer2


class ContentNegotiation(DefaultContentNegotiation):
    # ?format=, not the host's URL_FORMAT_OVERRIDE. (The stubs type it as api_settings.)
    settings = drf_defaults  # type: ignore[assignment]


class DateTimeField(serializers.DateTimeField):
    """Writes ISO 8601 in UTC and reads ISO 8601, whatever the host's DATETIME_FORMAT,
    DATETIME_INPUT_FORMATS or TIME_ZONE."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format=ISO_8601, input_formats=[ISO_8601], default_timezone=UTC, **kwargs)
