"""What else runs on the ssh platform's hosts: the problems prerequisites show (a host that
does not answer, Ray this tool did not start, a port the head needs taken, no Prometheus
where monitoring needs it), and Ray of others found and stopped for the gated host_cleanup
operation."""
from __future__ import annotations

from cluster.layout import PROMETHEUS_PORT, RAY_DEFAULTS
from cluster.platforms.base import PlatformError
from cluster.platforms.records import ForeignRay
from cluster.platforms.ssh import inventory
from cluster.platforms.ssh.runner import Process, SSHError
from cluster.prometheus import DEBIAN_BINARY

# prometheus_binary() on the host: on PATH, else where Debian puts it
PROMETHEUS = f"command -v prometheus || test -x {DEBIAN_BINARY}"


class SSHHostsSurvey:
    """Mixed into SSHPlatform (its hosts, runner, store and config)."""

    def check(self) -> list[str]:
        """Each host answers with its key, has Python, and runs no Ray of somebody else's
        (nor holds a port the head needs); there are hosts enough for the workers."""
        workers = [h for h in self.hosts if h.role == "worker"]
        problems = []
        if self.config.workers.count > len(workers):
            problems.append(f"workers.count is {self.config.workers.count} but the inventory "
                            f"has {len(workers)} worker host(s): one node per host")
        head_recorded = any(r["host"] == self.head.name for r in self.store.platform_records.apps())
        ray = self.config.ray
        head_ports = [ray.port or RAY_DEFAULTS["port"], ray.dashboard_port or
                      RAY_DEFAULTS["dashboard_port"], ray.serve_port or RAY_DEFAULTS["serve_port"],
                      ray.client_port or RAY_DEFAULTS["client_port"]]
        if self.config.monitoring.enabled:
            head_ports.append(self.config.monitoring.port or PROMETHEUS_PORT)

        def look(host: inventory.SSHHost) -> list[str]:
            said, head = [], host.role == "head"
            try:
                taken, foreign = self._survey(host, head_ports if head and not head_recorded
                                              else [])
                prometheus = not (head and self.config.monitoring.enabled) or self.runner.run(
                    self.login(host), ["sh", "-c", PROMETHEUS]).returncode == 0
            except SSHError as e:
                return [str(e)]
            if not prometheus:
                said.append(f"{host.name}: monitoring.enabled but prometheus is not installed "
                            f"there (Debian: apt-get install --no-install-recommends prometheus)")
            if taken:
                said.append(f"{host.name}: port(s) {', '.join(map(str, taken))} taken (the head "
                            f"listens there): free them, or set other ports in ray.*port")
            for found in foreign:
                pid, _, command = found.first
                said.append(f"{host.name}: a Ray this tool did not start runs there (pid {pid}: "
                            f"{command[:100]}; {len(found.processes)} Ray process(es) in its "
                            f"session {found.session}): stop it (the host_cleanup operation, "
                            f"gated), or take the host out of the inventory")
            return said
        for said in self._each(look):
            problems += said
        return problems

    def _survey(self, host: inventory.SSHHost, ports: list[int]) -> tuple[list[int], list[ForeignRay]]:
        """(the ``ports`` taken on ``host``, the Ray there of sessions this tool did not start).
        The nodes of ours it saw running count as seen (``SSHPlatform._seen``): a listing
        right after (the plan's next checkpoint) does not ask the host again."""
        recorded = [r for r in self.store.platform_records.apps()
                    if r["host"] == host.name and r.get("pid")]
        found = self.runner.survey(self.login(host), ports, [
            Process(host.name, r["pid"], r["pid_start"]) for r in recorded])
        seen = self.clock.monotonic()
        for record, running in zip(recorded, found["alive"], strict=True):
            if running:
                self._seen[record["id"]] = seen
        ours = {r["pid"] for r in recorded}
        sessions: dict[int, list] = {}
        for process in found["ray"]:
            if process.session not in ours:
                sessions.setdefault(process.session, []).append(process)
        return found["taken"], [
            ForeignRay(host.name, session, tuple(sorted((p.pid, p.start, p.command)
                                                        for p in members)))
            for session, members in sorted(sessions.items())]

    def foreign_ray(self, host: str | None = None) -> list[ForeignRay]:
        def look(one: inventory.SSHHost) -> list[ForeignRay]:
            try:
                return self._survey(one, [])[1]
            except SSHError as e:
                raise PlatformError(str(e)) from None
        hosts = [self.host(host)] if host else self.hosts
        return [found for each in self._each(look, hosts) for found in each]

    def stop_foreign(self, found: ForeignRay, grace_seconds: float = 5.0) -> list[int]:
        try:
            return self.runner.stop_each(self.login(self.host(found.host)), [
                Process(found.host, pid, start, command) for pid, start, command in found.processes],
                grace_seconds)
        except SSHError as e:
            raise PlatformError(str(e)) from None
