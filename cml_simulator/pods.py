"""The simulator's pods mode: every application and job run is a pod, a lab host of its own
(see lab/), as on CML.

A pod has its own address on the workspace network (``CDSW_IP_ADDRESS``), its project's
files at ``/home/cdsw`` (shared by the project's pods, as CML mounts them), an empty ``/tmp``
and nothing else of this machine's work directories; the interpreter and the checkout are
the "runtime image", shared. It gets the environment a CML pod gets (``CDSW_*`` with the
workspace's key), never the simulator's. Apps listen on ``127.0.0.1:$CDSW_APP_PORT``, which
is the same number in every pod (each has its own network); a forwarder in the pod (CML's
proxy) lets the edge reach it. Pods reach each other on any port; a host outside the
workspace network (a CI runner) reaches only the edge.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cluster.platforms.local import LocalPlatform
from lab import Lab, LabError

HOME = "/home/cdsw"  # where a pod sees its project
RUN_DIR = "/tmp/cml-job"  # where a job run's pod sees its run directory (the engine's logs)
APP_PORT = 8100  # CDSW_APP_PORT: one number for every pod
FORWARD_PORT = 8099  # the in-pod proxy the edge talks to
FORWARDER = Path(__file__).with_name("forwarder.py")


@dataclass(frozen=True)
class Pods:
    """Where pods are made: a lab, its workspace network and the edge host."""
    lab: Lab
    network: str = "ws"
    edge: str = "edge"

    @classmethod
    def open(cls, lab_id: str, network: str = "ws", edge: str = "edge") -> Pods:
        lab = Lab.open(lab_id)
        mine = os.stat("/proc/self/ns/net").st_ino
        if mine != os.stat(f"/proc/{lab.host(edge).anchor}/ns/net").st_ino:
            raise LabError(f"--pods: run the simulator inside the lab's {edge} host "
                           f"(python -m lab exec {lab.id} {edge} -- ...)")
        return cls(lab, network, edge)

    @property
    def edge_address(self) -> str:
        return self.lab.host(self.edge).addresses[self.network]

    def name(self, hostname: str) -> None:
        """``hostname`` resolves to the edge in every host of the lab."""
        self.lab.set_name(hostname, self.edge)


class PodPlatform(LocalPlatform):
    """A project's apps and job runs, each started in a pod of its own."""

    def __init__(self, pods: Pods, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pods = pods
        self._pod_of: dict[str, str] = {}  # app name or run id -> its pod (a lab host)

    def _new_pod(self, name: str, dirs: dict[str, str]) -> str:
        pod = f"p-{secrets.token_hex(3)}"
        self.pods.lab.add_host(pod, [self.pods.network], dirs=dirs)
        self._pod_of[name] = pod
        return pod

    def _place(self, name: str, taken: set[str]) -> str:
        pod = self._new_pod(name, {HOME: str(self.project_dir)})
        return self.pods.lab.host(pod).address

    def _environment(self, ip: str | None, own: dict) -> dict:
        """What a CML pod's process sees: the runtime's tools, its home, the CDSW_* facts."""
        runtime = Path(sys.executable).parent
        env = {"PATH": f"{runtime}:/usr/local/bin:/usr/bin:/bin", "HOME": HOME,
               "LANG": "C.UTF-8", **own, "CDSW_PROJECT_ID": self.project_id, **self.extra_env}
        return {**env, "CDSW_IP_ADDRESS": ip} if ip else env

    def _run_dir(self, run_dir: Path) -> str:
        return RUN_DIR

    def _start(self, name: str, argv: list[str], env: dict, stdout, run_dir: Path | None = None
               ) -> subprocess.Popen:
        lab = self.pods.lab
        if run_dir is not None:  # a job run: a pod of its own, with its run directory
            pod = self._new_pod(name, {HOME: str(self.project_dir), RUN_DIR: str(run_dir)})
            env = {**env, "CDSW_IP_ADDRESS": lab.host(pod).address}
        else:
            pod = self._pod_of[name]
            address = lab.host(pod).address
            lab.spawn(pod, [sys.executable, str(FORWARDER), address, str(FORWARD_PORT),
                            env.get("CDSW_APP_PORT", str(APP_PORT)), self.pods.edge_address],
                      note=f"CML proxy of {name}")
        return lab.spawn(pod, argv, env=env, cwd=HOME, stdout=stdout, stderr=subprocess.STDOUT,
                         note=name)

    def _release(self, name: str) -> None:
        pod = self._pod_of.pop(name, None)
        if pod is not None:
            self.pods.lab.remove_host(pod)
