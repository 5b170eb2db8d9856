"""The request guards' rules (api_server/guards.py) on their inputs: Host names (DNS
rebinding), JSON depth without parsing, JSON media types, who calls behind trusted proxies,
which requests carry a body, and cross-site origins. The guards in front of the app:
tests/security/test_http_guards.py and test_disclosure.py."""
from __future__ import annotations

import ipaddress

import pytest

from api_server.guards import (
    MAX_JSON_DEPTH,
    bodiless_operations,
    client_address,
    cross_site,
    host_allowed,
    is_json,
    json_depth,
    may_carry_body,
)

ALLOWED = frozenset({"localhost", "ray.example.com"})


# -- Host ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8080", "10.1.2.3:443", "[::1]:8080",
                                  "[::1]", "::1", "localhost", "localhost:8080",
                                  "ray.example.com", "RAY.Example.COM:443", "ray.example.com."])
def test_an_address_or_an_allowed_name_is_served(host):
    assert host_allowed(host, ALLOWED)


@pytest.mark.parametrize("host", ["rebind.evil.example", "evil.example:8080",
                                  "ray.example.com.evil.example", "localhost.evil.example",
                                  "127.0.0.1.nip.io", "[evil]:80", ""])
def test_any_other_name_is_refused(host):
    assert not host_allowed(host, ALLOWED)


# -- JSON depth ------------------------------------------------------------------------------------
@pytest.mark.parametrize("data,depth", [
    (b'{}', 1), (b'{"a": [1, {"b": []}]}', 4), (b'"just a string"', 0), (b'42', 0),
    (b'{"a": "[[[[{{{{"}', 1),  # brackets inside strings do not nest
    (b'{"a": "quote \\" then [[[ "}', 1),  # an escaped quote does not end the string
    (b'{"a": "backslash \\\\", "b": [[1]]}', 3),  # an escaped backslash does not escape the quote
    (b'[]' * 5, 1), (b'[' * 1000 + b']' * 1000, 1000),
])
def test_json_depth_is_counted_without_parsing(data, depth):
    assert json_depth(data) == depth


def test_a_document_deeper_than_the_limit_is_seen_as_deeper():
    assert json_depth(b'[' * (MAX_JSON_DEPTH + 1)) > MAX_JSON_DEPTH  # unclosed, still counted


# -- JSON media types ------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON",
                                          "application/json; charset=utf-8",
                                          "application/merge-patch+json",
                                          " application/problem+json ;q=1"])
def test_json_is_application_json_or_a_json_suffix(content_type):
    assert is_json(content_type)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "text/json",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x",
                                          "application/jsonp", "application/json-seq"])
def test_forms_and_text_are_not_json(content_type):
    assert not is_json(content_type)


# -- who calls -------------------------------------------------------------------------------------
PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.1/32"))


def test_without_a_trusted_proxy_the_caller_is_the_peer_whatever_it_forwards():
    assert client_address("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"
    assert client_address(None, None, PROXIES) == "?"


def test_behind_a_trusted_proxy_the_caller_is_the_address_it_appended():
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.9", PROXIES) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_followed_to_the_first_untrusted_hop():
    # the caller claims 6.6.6.6 itself; 203.0.113.9 is what the outer proxy saw
    forwarded = "6.6.6.6, 203.0.113.9, 192.168.1.1"
    assert client_address("10.0.0.5", forwarded, PROXIES) == "203.0.113.9"


def test_a_trusted_proxy_that_forwards_nothing_is_the_caller():
    assert client_address("10.0.0.5", "", PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.5", " , ", PROXIES) == "10.0.0.5"


def test_a_forwarded_hop_that_is_no_address_ends_the_chain_and_is_cut_short():
    assert client_address("10.0.0.5", "x" * 500, PROXIES) == "x" * 64


# -- bodies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,length,encoding,expected", [
    ("GET", None, None, False), ("GET", 0, None, False), ("GET", 12, None, True),
    ("GET", None, "chunked", True), ("DELETE", None, "gzip, Chunked", True),
    ("POST", None, None, True), ("PUT", 0, None, True), ("PATCH", None, None, True),
    ("DELETE", None, None, False),
])
def test_which_requests_may_carry_a_body_to_check(method, length, encoding, expected):
    assert may_carry_body(method, length, encoding) is expected


def test_mutations_the_spec_gives_no_body_are_known_by_their_flask_rule():
    paths = {
        "/api/v1/deployments/{run_id}/cancel": {"post": {"responses": {}},
                                                "parameters": []},
        "/api/v1/deployments": {"post": {"requestBody": {}, "responses": {}},
                                "get": {"responses": {}}},
        "/api/v1/approvals/{key}": {"delete": {"responses": {}}, "put": {"responses": {}}},
    }
    assert bodiless_operations(paths) == {("POST", "/api/v1/deployments/<run_id>/cancel"),
                                          ("PUT", "/api/v1/approvals/<key>")}


# -- origins ---------------------------------------------------------------------------------------
def test_a_request_without_an_origin_is_not_a_browsers_cross_site_request():
    assert not cross_site(None, "127.0.0.1:8080", ())


def test_this_servers_own_origin_and_the_configured_ones_are_not_cross_site():
    assert not cross_site("http://127.0.0.1:8080", "127.0.0.1:8080", ())
    assert not cross_site("https://RAY.example.com", "ray.example.com", ())
    assert not cross_site("https://ui.example.com", "127.0.0.1:8080", ("https://ui.example.com",))


def test_any_other_origin_is_cross_site():
    assert cross_site("https://evil.example", "127.0.0.1:8080", ("https://ui.example.com",))
    assert cross_site("http://127.0.0.1:9999", "127.0.0.1:8080", ())
    assert cross_site("null", "127.0.0.1:8080", ())  # a sandboxed or file:// page
