"""The platform-call label (paths as the CML client sends them, below its API base): ids out
of the path, so the metric's label set stays small."""
from core.metrics import operation


def test_ids_in_a_path_become_one_placeholder_and_names_stay():
    assert operation("POST", "/projects/abc123/applications") == \
        "POST /projects/{id}/applications"
    assert operation("GET", "/projects/p-1/applications/app-42") == \
        "GET /projects/{id}/applications/{id}"
    assert operation("GET", "/projects") == "GET /projects"


def test_the_query_string_is_dropped():
    assert operation("GET", "/projects/7/jobs?page_token=xyz9&page_size=10") == \
        "GET /projects/{id}/jobs"


def test_calls_to_different_objects_of_one_kind_share_a_label():
    assert operation("DELETE", "/projects/1a/applications/2b") == \
        operation("DELETE", "/projects/99/applications/7c7")


def test_a_verb_after_a_colon_is_kept():
    assert operation("POST", "/projects/p1/applications/a2:stop") == \
        "POST /projects/{id}/applications/{id}:stop"
