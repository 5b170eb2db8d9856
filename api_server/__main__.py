"""python -m api_server [--host H] [--port P] [--config FILE] [--state-dir DIR]

The development server. Production: gunicorn 'api_server.wsgi:app' (see README).
Binds 127.0.0.1:8080 by default (RAYDEPLOY_API_HOST / RAYDEPLOY_API_PORT, or the port a
platform publishes for this app, override); without API
tokens it refuses any non-loopback address.
"""
from __future__ import annotations

import argparse
import logging
import sys

from api_server import create_app
from api_server.settings import Settings
from cluster.config import load_config
from core.errors import DomainError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api_server", description=__doc__.split("\n\n")[1])
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--config", metavar="FILE")
    parser.add_argument("--state-dir", metavar="DIR")
    parser.add_argument("--control-plane", action="store_true",
                        help="own the store, run the runs, continue the one running at a restart")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    settings.config_path = args.config or settings.config_path
    settings.state_dir = args.state_dir or settings.state_dir
    settings.control_plane = args.control_plane or settings.control_plane
    try:
        config = load_config(settings.config_path, state_dir_override=settings.state_dir)
        host = args.host or settings.host or config.api.host
        port = args.port or settings.port or config.api.port
        settings.public_url = settings.public_url or f"http://{host}:{port}"
        app = create_app(settings, config, listen_host=host)
    except DomainError as e:  # a config, tokens, state dir or listener problem: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.run(host=host, port=port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
