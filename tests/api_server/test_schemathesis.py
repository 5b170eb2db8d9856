"""Property tests of the API against its own spec with schemathesis (CLI, real server):
no 5xx, every response conforms to the spec, a header the spec requires is required, a
method the spec does not list is a 405 with Allow, and the auth the spec declares is the
auth the server applies, with a bounded number of examples.

The server has no cluster and an empty project dir, so the runs generated requests start
fail at once instead of starting nodes."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ApiServer, clean_env, write_config

pytestmark = pytest.mark.integration


def test_api_conforms_to_its_spec(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    config = write_config(tmp_path / "safe.yaml", {
        "state_dir": str(tmp_path / "state"), "project_dir": str(project),
        "jobs_config": str(project / "missing-jobs.yaml"), "cluster_name": "fuzz",
        "ray": {"version": "0.0.0"}})
    server = ApiServer(config)
    try:
        st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        result = subprocess.run(
            [st, "run", f"{server.url}/openapi.json", "--checks",
             "not_a_server_error,status_code_conformance,content_type_conformance,"
             "response_schema_conformance,response_headers_conformance,"
             "missing_required_header,unsupported_method,ignored_auth",
             "--max-examples", "15", "--seed", "7", "--request-timeout", "20",
             "--max-time", "90", "--no-color", "--warnings", "off"],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "Traceback" not in server.output()
    finally:
        server.stop()
