"""The cluster's management API from Python with requests, as the seed tool's clients call
it: health, status, nodes, capacity, applications.

    python examples/management_api.py URL            # the URL a deploy printed
    RAYDEPLOY_TOKEN=... python examples/management_api.py https://ray-cml-control.<domain>

Exit 0 when every call answered 200 (read-only: it changes nothing).
"""
import os
import sys

import requests


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    base = sys.argv[1].rstrip("/")
    token = os.environ.get("RAYDEPLOY_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ok = True
    for path in ("/health", "/api/v1/cluster/status", "/api/v1/resources/nodes",
                 "/api/v1/resources/capacity", "/api/v1/applications"):
        answer = requests.get(base + path, headers=headers, timeout=30)
        ok = ok and answer.status_code == 200
        print(f"GET {path}: {answer.status_code}")
        if path == "/api/v1/resources/nodes" and answer.ok:
            for node in answer.json()["nodes"]:
                print(f"  {node['cml_app_name'] or '-'} {node['node_type']} {node['node_ip']} "
                      f"{'ALIVE' if node['alive'] else 'not alive'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
