"""Job: make the Python environment the nodes run in.

In a project that is a clone made for the cluster (CML: ``RAYDEPLOY_PROJECT_CLONE=1``), create
a venv in the project (``.venv``) and install requirements.txt into it, skipping when the
same requirements were already installed (a hash marker in the venv). Where the project is
your own working tree (the local platform), the nodes run in the interpreter you deploy
from: check that it has every pinned requirement, and say which are missing.
"""
import hashlib
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path("requirements.txt")


def pinned(lines):
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*===?\s*([^;\s=]+)", line)
        if match:
            yield match.group(1), match.group(3)


def check_current() -> int:
    wrong = []
    for name, version in pinned(REQUIREMENTS.read_text().splitlines()):
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != version:
            wrong.append(f"{name}=={version} (have {have or 'none'})")
    if wrong:
        print("missing or different requirements: " + ", ".join(wrong))
        print("install them with: pip install -r requirements.txt")
        return 1
    print(f"environment ok: {sys.executable}")
    return 0


def build_venv(venv: Path) -> int:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = venv / ".requirements.sha256"
    if marker.exists() and marker.read_text() == digest:
        print(f"{venv}: requirements already installed ({digest[:12]}), skipping")
        return 0
    if not (venv / "bin" / "python").exists():
        # on top of the runtime's packages: only what it lacks (or pins otherwise) is installed
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True)
        see_the_runtimes_packages(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    result = subprocess.run(pip + ["-r", str(REQUIREMENTS)])
    if result.returncode == 0:
        marker.write_text(digest)
    return result.returncode


def see_the_runtimes_packages(venv: Path) -> None:
    """A runtime whose Python is itself a venv keeps its packages there, not in the system
    site-packages that --system-site-packages shows: point the new venv at them too."""
    if sys.prefix == sys.base_prefix:
        return
    import sysconfig
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    runtime = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_runtime_packages.pth").write_text("\n".join(sorted(runtime)) + "\n")


def main() -> int:
    if os.environ.get("RAYDEPLOY_PROJECT_CLONE") == "1" or "--venv" in sys.argv:
        return build_venv(Path(os.environ.get("RAYDEPLOY_VENV", ".venv")))
    return check_current()


if __name__ == "__main__":
    sys.exit(main())
