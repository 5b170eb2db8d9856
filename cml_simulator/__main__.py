"""python -m cml_simulator --port P [options]: a CML API v2 simulator on loopback.

Faults by flag or environment: --error-rate (CML_SIM_ERROR_RATE), --rate-limit-rate
(CML_SIM_RATE_LIMIT_RATE) with --retry-after (CML_SIM_RETRY_AFTER), --latency
(CML_SIM_LATENCY). A request rate limit: --max-requests-per-second (CML_SIM_MAX_RPS, default
0: none; over it every API call is answered 429 with Retry-After). Lifecycle timing:
--app-start-delay (CML_SIM_APP_START_DELAY, default 1 s APPLICATION_STARTING, 0 allowed),
--app-stop-delay (CML_SIM_APP_STOP_DELAY, default 0.5 s APPLICATION_STOPPING). The API key is
--api-key or CML_SIM_API_KEY (never printed).

Pods mode (--pods LAB_ID, run inside the lab's edge host, see cml_simulator/pods.py): every
application and job run is a pod of that lab, and this one listener is the workspace's edge:
the CML API at --domain, every app's public URL at <subdomain>.<domain> (cml_simulator/edge.py).
It may then listen on the lab's addresses (0.0.0.0 inside the edge host: the lab's only).
"""
from __future__ import annotations

import argparse
import atexit
import ipaddress
import os
import signal
import sys
import tempfile

from cml_simulator.app import Faults, create_app
from cml_simulator.edge import Edge
from cml_simulator.pods import Pods
from cml_simulator.state import DEFAULT_APP_START_DELAY, DEFAULT_APP_STOP_DELAY, Workspace
from lab import LabError


def main(argv=None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m cml_simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", default=None, help="workspace files (default: a temp dir)")
    parser.add_argument("--api-key", default=env.get("CML_SIM_API_KEY"))
    parser.add_argument("--error-rate", type=float, default=float(env.get("CML_SIM_ERROR_RATE", 0)))
    parser.add_argument("--rate-limit-rate", type=float,
                        default=float(env.get("CML_SIM_RATE_LIMIT_RATE", 0)))
    parser.add_argument("--retry-after", type=float, default=float(env.get("CML_SIM_RETRY_AFTER", 1)))
    parser.add_argument("--latency", type=float, default=float(env.get("CML_SIM_LATENCY", 0)))
    parser.add_argument("--max-requests-per-second", type=float,
                        default=float(env.get("CML_SIM_MAX_RPS", 0)))
    parser.add_argument("--app-start-delay", type=float,  # seconds APPLICATION_STARTING
                        default=float(env.get("CML_SIM_APP_START_DELAY", DEFAULT_APP_START_DELAY)))
    parser.add_argument("--app-stop-delay", type=float,  # seconds APPLICATION_STOPPING, at least
                        default=float(env.get("CML_SIM_APP_STOP_DELAY", DEFAULT_APP_STOP_DELAY)))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pods", metavar="LAB_ID", help="apps and job runs are pods of this lab")
    parser.add_argument("--domain", default="ml.localhost", help="the workspace's domain")
    args = parser.parse_args(argv)
    pods = None
    if args.pods:
        try:
            pods = Pods.open(args.pods)
        except LabError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    elif not ipaddress.ip_address(args.host).is_loopback:
        print("error: the simulator listens on loopback addresses only (outside a lab)",
              file=sys.stderr)
        return 2
    if not args.api_key:
        print("error: give --api-key or CML_SIM_API_KEY", file=sys.stderr)
        return 2
    for name in ("error_rate", "rate_limit_rate"):
        if not 0 <= getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be in [0, 1)", file=sys.stderr)
            return 2
    if args.max_requests_per_second < 0:
        print("error: --max-requests-per-second must be >= 0 (0: no limit)", file=sys.stderr)
        return 2
    if args.app_start_delay < 0 or args.app_stop_delay < 0:
        print("error: --app-start-delay and --app-stop-delay must be >= 0", file=sys.stderr)
        return 2
    workspace = Workspace(args.state_dir or tempfile.mkdtemp(prefix="cml-sim-"), args.api_key,
                          domain=args.domain, app_start_delay=args.app_start_delay,
                          app_stop_delay=args.app_stop_delay, pods=pods)
    atexit.register(workspace.shutdown)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = create_app(workspace, Faults(args.error_rate, args.rate_limit_rate, args.retry_after,
                                       args.latency, args.seed, args.max_requests_per_second))
    if pods is not None:
        pods.name(args.domain)
        app.wsgi_app = Edge(app.wsgi_app, workspace, args.domain)
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
