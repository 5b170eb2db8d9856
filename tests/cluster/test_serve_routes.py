"""Which requests a route prefix takes (Serve: the longest prefix that matches whole
segments wins)."""
from __future__ import annotations

import pytest

from cluster.serve_routes import management_paths_taken, matches, takes_traffic_of


@pytest.mark.parametrize("prefix,rule,expected", [
    ("/api", "/api/v1/plan", True), ("/api/v1/plan", "/api/v1/plan", True),
    ("/apix", "/api/v1/plan", False), ("/api/v1/approvals/x", "/api/v1/approvals/<key>", True),
    ("/api/v1/approvals/x/y", "/api/v1/approvals/<key>", False),
    ("/docs-assets/a/b/c", "/docs-assets/<path:name>", True), ("/", "/health", True),
])
def test_a_prefix_matches_a_rule_in_whole_segments(prefix, rule, expected):
    assert matches(prefix, rule) is expected


def test_the_management_paths_a_prefix_takes_depend_on_where_the_api_is():
    assert "/api/v1/approvals/<key>" in management_paths_taken("/api/v1/approvals", "/")
    assert management_paths_taken("/api/v2", "/") == []
    assert management_paths_taken("/api", "/mgmt") == []  # outside the API's prefix
    assert management_paths_taken("/mgmt/health", "/mgmt") == ["/mgmt/health"]
    assert management_paths_taken("/mgmt/", "/mgmt") == ["/mgmt"]  # the same prefix
    assert management_paths_taken("/", "/mgmt") == []  # shorter: the API keeps its requests


def test_a_longer_prefix_inside_another_takes_its_traffic():
    assert takes_traffic_of("/hello/admin", "/hello") and takes_traffic_of("/x", "/")
    assert not takes_traffic_of("/hello-admin", "/hello")
    assert not takes_traffic_of("/hello", "/hello/") and not takes_traffic_of("/", "/x")
