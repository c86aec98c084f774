"""Test settings: the base settings plus a throwaway secret and fast hashing."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-insecure-secret-key-0123456789abcdef")
os.environ["CONSENT_DEV_TOOLS"] = "1"  # the sandbox and the demo are under test

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONSENT_WRITE_RATE = "10000/min"

# Tests run in one process; clearing a file cache between tests would only cost time.
if not REDIS_URL:  # noqa: F405
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # This test process's own generation file: another run's writes must not touch it.
    CONSENT_PROCESS_CACHE_FILE = os.path.join(
        __import__("tempfile").gettempdir(), f"consent-test-{os.getpid()}.generation"
    )

# This process's own rate counters, as for the generation file.
CONSENT_RATE_LIMIT_DIR = os.path.join(
    __import__("tempfile").gettempdir(), f"consent-test-rates-{os.getpid()}"
)

# On disk, not in shared memory: the live-server tests' threads then take SQLite's normal
# locks (with the busy timeout) instead of failing at once on shared-cache table locks.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile as _tempfile

    _test_db = f"consent-test-{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_tempfile.gettempdir(), _test_db)}  # noqa: F405
