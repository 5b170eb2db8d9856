"""Write (or check) the OpenAPI spec: python -m api_server.spec [--check]

openapi/openapi.yaml is a build artifact of the app; a test fails when it is stale."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "openapi" / "openapi.yaml"


def render() -> str:
    """The spec of a server with tokens (what a deployment that listens beyond loopback
    serves): its operations need a bearer token. A server without tokens serves its own
    spec, with ``security: []``."""
    from api_server import create_app
    from api_server.settings import Settings
    from checkpoints.access import Principals
    from cluster.config import parse_config
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({"state_dir": tmp}, environ={})
        principals = Principals([("spec", "not-a-real-token-0123456789", {"viewer"})])
        app = create_app(Settings(), config, principals=principals)
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return yaml.safe_dump(spec, sort_keys=True, allow_unicode=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api_server.spec")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not SPEC.exists() or SPEC.read_text() != text:
            print(f"{SPEC} is stale: run python -m api_server.spec", file=sys.stderr)
            return 1
        return 0
    SPEC.parent.mkdir(exist_ok=True)
    SPEC.write_text(text)
    print(f"wrote {SPEC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
