from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from consent_service.core.network import client_ip, truncate_ip


def request_from(peer: str, forwarded: str | None = None):
    request = RequestFactory().get("/", REMOTE_ADDR=peer)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


def test_without_trusted_proxies_the_socket_peer_wins():
    assert client_ip(request_from("203.0.113.7", "1.2.3.4")) == "203.0.113.7"


@override_settings(CONSENT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_trusted_proxy_hop_is_skipped_to_the_client():
    request = request_from("10.0.0.2", "198.51.100.9, 10.0.0.5")

    assert client_ip(request) == "198.51.100.9"


@override_settings(CONSENT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_a_client_supplied_chain_cannot_choose_the_address():
    # The client sent "X-Forwarded-For: 1.1.1.1"; our proxy appended the real peer.
    request = request_from("10.0.0.2", "1.1.1.1, 198.51.100.9")

    assert client_ip(request) == "198.51.100.9"


@override_settings(CONSENT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_an_untrusted_peer_is_not_believed_about_forwarding():
    assert client_ip(request_from("203.0.113.7", "1.1.1.1")) == "203.0.113.7"


@override_settings(CONSENT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_garbage_in_the_chain_stops_the_walk():
    assert client_ip(request_from("10.0.0.2", "1.1.1.1, not-an-ip")) == "10.0.0.2"


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),  # an IPv4 client on a dual-stack socket
        ("garbage", ""),
        ("", ""),
    ],
)
def test_truncate_ip_keeps_only_the_network(address, truncated):
    assert truncate_ip(address) == truncated
