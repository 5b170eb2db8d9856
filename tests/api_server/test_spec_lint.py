"""The spec is a contract for web UIs: Redocly CLI's recommended rules (redocly.yaml says
which one is off, and why) report no error and no warning; every operation has an
operationId and a tag."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

REDOCLY = "@redocly/cli@2.77.0"  # pinned: a new release may add rules


def test_every_operation_has_a_stable_operation_id_and_a_tag():
    spec = yaml.safe_load((ROOT / "openapi" / "openapi.yaml").read_text())
    ids = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue  # path-level parameters
            assert operation.get("operationId") and operation.get("tags"), f"{method} {path}"
            ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))
    assert spec["servers"]


def test_redocly_lint_reports_no_errors_and_no_warnings():
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: cannot run Redocly CLI")
    result = subprocess.run([npx, "--yes", REDOCLY, "lint", "openapi/openapi.yaml",
                             "--format=json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    problems = [f"{p['severity']} {p['ruleId']}: {p['message']}" for p in report["problems"]]
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, problems
    assert result.returncode == 0, result.stderr[-2000:]
