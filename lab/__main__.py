"""python -m lab up [--hosts N] | status [ID] | exec ID HOST -- CMD... | down [ID | --stale | --all]

    up      a lab of N hosts (h1..hN, 198.18.0.1..N on one bridge); prints its id
    status  the labs on this machine (or one): hosts, addresses, live processes
    exec    run a command in a host of a lab (its network, its private /tmp and home)
    down    remove a lab: its processes, namespaces and directory; --stale: the labs whose
            owner died (a killed test run); --all: every lab
Needs root (network and mount namespaces). Nothing of a lab is linked to this machine's
network: its hosts reach each other and nothing else.
"""
from __future__ import annotations

import argparse
import json
import sys

from lab import Lab, LabError, cleanup_stale, list_labs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="make a lab")
    up.add_argument("--hosts", type=int, default=2, help="how many hosts (default 2)")
    status = sub.add_parser("status", help="show labs")
    status.add_argument("id", nargs="?")
    run = sub.add_parser("exec", help="run a command in a lab host")
    run.add_argument("id")
    run.add_argument("host")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    down = sub.add_parser("down", help="remove labs")
    which = down.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--stale", action="store_true")
    which.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def cmd_up(args) -> int:
    if not 1 <= args.hosts <= 250:
        print("error: --hosts must be from 1 to 250", file=sys.stderr)
        return 2
    lab = Lab.create()
    try:
        lab.add_network("ws", "198.18.0.0/24")
        for n in range(1, args.hosts + 1):
            lab.add_host(f"h{n}", ["ws"])
    except BaseException:
        lab.down()
        raise
    print(f"lab {lab.id}: " + ", ".join(f"{h.name} {h.address}" for h in lab.hosts().values()))
    print(f"  python -m lab exec {lab.id} h1 -- sh      # a shell in h1")
    print(f"  python -m lab down {lab.id}")
    return 0


def cmd_status(args) -> int:
    ids = [args.id] if args.id else list_labs()
    if not ids:
        print("no labs")
    for lab_id in ids:
        print(json.dumps(Lab.open(lab_id).status(), indent=1))
    return 0


def cmd_exec(args) -> int:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        print("error: give a command after --", file=sys.stderr)
        return 2
    lab = Lab.open(args.id)
    proc = lab.spawn(args.host, command, stdout=None, stderr=None, note="python -m lab exec")
    return proc.wait()


def cmd_down(args) -> int:
    if args.stale or args.all:
        removed = cleanup_stale(everything=args.all)
        print("removed: " + (", ".join(removed) or "none"))
        return 0
    Lab.open(args.id).down()
    print(f"lab {args.id} removed")
    return 0


COMMANDS = {"up": cmd_up, "status": cmd_status, "exec": cmd_exec, "down": cmd_down}

if __name__ == "__main__":
    sys.exit(main())
