from __future__ import annotations

import http.client
import json

import pytest

from consent_service.sandbox.server import SandboxServer
from tests.sandbox.payloads import TOKEN, recorded_requests

FLAGS_BODIES = [item for item in recorded_requests() if item.path.startswith("/flags")]


@pytest.mark.parametrize("recorded", FLAGS_BODIES, ids=lambda item: item.name)
def test_recorded_flags_requests_get_the_v2_shape(client, recorded):
    response = client.post(recorded.url, content=recorded.body, headers=recorded.headers)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"flags", "errorsWhileComputingFlags", "requestId"}
    assert body["errorsWhileComputingFlags"] is False
    assert body["flags"]["demo-flag"] == {
        "key": "demo-flag",
        "enabled": True,
        "variant": None,
        "reason": {
            "code": "condition_match",
            "condition_index": 0,
            "description": "Matched condition set 1",
        },
        "metadata": {"id": 1, "version": 1, "payload": None},
    }


def test_flags_follow_the_configured_values(server, client):
    server.flags["checkout"] = "variant-b"
    server.flags["off"] = False

    flags = client.post("/flags/?v=2", json={"token": TOKEN, "distinct_id": "u1"}).json()["flags"]

    assert (flags["checkout"]["enabled"], flags["checkout"]["variant"]) == (True, "variant-b")
    assert flags["off"]["enabled"] is False
    server.flags.pop("checkout")
    server.flags.pop("off")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"\x1f\x8b\x08garbage", 400), (b"{nope", 400), (b'{"distinct_id": "u1"}', 401)],
)
def test_flags_refuse_bad_bodies(client, body, status):
    assert client.post("/flags/?v=2", content=body).status_code == status


def test_decide_answers_the_legacy_shape(client):
    response = client.post("/decide/?v=3", json={"api_key": TOKEN, "distinct_id": "u1"})

    assert response.status_code == 200
    assert response.json()["featureFlags"] == {"demo-flag": True}


def test_remote_config_json(client):
    response = client.get(f"/array/{TOKEN}/config")

    config = response.json()
    assert config["token"] == TOKEN
    assert config["supportedCompression"] == ["gzip", "gzip-js"]
    assert config["hasFeatureFlags"] is True
    assert config["analytics"] == {"endpoint": "/i/v0/e/"}
    assert config["sessionRecording"]["endpoint"] == "/s/"
    assert (config["surveys"], config["heatmaps"], config["siteApps"]) == (False, False, [])
    assert config["defaultIdentifiedOnly"] is True


def test_remote_config_script_wraps_the_same_json(client):
    response = client.get(f"/array/{TOKEN}/config.js")

    assert response.headers["content-type"].startswith("application/javascript")
    prefix = (
        "(function(){window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {}; "
        f'window._POSTHOG_REMOTE_CONFIG["{TOKEN}"] = {{config: '
    )
    suffix = ", siteApps: []};})();"
    assert response.text.startswith(prefix) and response.text.endswith(suffix)
    config = json.loads(response.text.removeprefix(prefix).removesuffix(suffix))
    assert config == client.get(f"/array/{TOKEN}/config").json()


@pytest.fixture(scope="module")
def static_sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    (root / "secret.txt").write_text("do not serve")
    dist = root / "dist"
    dist.mkdir()
    (dist / "array.js").write_text("/* array */")
    (dist / "surveys.js").write_text("/* surveys */")
    (dist / "array.js.map").write_text("{}")
    with SandboxServer(static_root=dist) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/static/array.js", b"/* array */", "application/javascript; charset=utf-8"),
        ("/static/1.449.2/surveys.js", b"/* surveys */", "application/javascript; charset=utf-8"),
        ("/static/surveys.js?v=1.449.2", b"/* surveys */", "application/javascript; charset=utf-8"),
        ("/static/array.js.map", b"{}", "application/json"),
    ],
)
def test_static_files_come_from_dist(static_sandbox, client, path, body, content_type):
    response = client.get(f"{static_sandbox.url}{path}")

    assert (response.status_code, response.content) == (200, body)
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/1.2.3/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static//etc/passwd",
        "/static/missing.js",
        "/static/array.js%00.txt",
    ],
)
def test_static_refuses_traversal_and_unknown_files(static_sandbox, path):
    connection = http.client.HTTPConnection("127.0.0.1", static_sandbox.port, timeout=5)
    try:
        connection.request("GET", path)  # http.client sends the path verbatim
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 404
    assert b"do not serve" not in body


def test_static_without_dist_is_404(tmp_path, client):
    with SandboxServer(static_root=tmp_path / "absent") as server:
        assert client.get(f"{server.url}/static/array.js").status_code == 404
