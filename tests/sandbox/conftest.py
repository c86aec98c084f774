from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from consent_service.sandbox.server import SandboxServer
from tests.sandbox.payloads import PERSONAL_API_KEY, batch_body


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(personal_api_key=PERSONAL_API_KEY, project_id="1") as server:
        yield server


@pytest.fixture(autouse=True)
def server(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The module's sandbox, emptied before and after each test."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()


# Clients live per module: building one (its SSL context) costs more than most tests.
@pytest.fixture(scope="module")
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A client for the private API, authenticated with the personal API key."""
    headers = {"Authorization": f"Bearer {PERSONAL_API_KEY}"}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=10) as http:
        yield http


@pytest.fixture
def capture(client: httpx.Client) -> Callable[..., None]:
    """Send events to /batch/ (gzip, project token in the envelope); asserts a 200."""

    def send(*events: dict[str, Any]) -> None:
        response = client.post("/batch/", content=batch_body(*events))
        assert response.status_code == 200, response.text

    return send
