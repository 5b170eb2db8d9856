"""The control plane as a CML application (``<cluster>-control``, made by a bootstrap:
control.py beside this). It runs as a script with the runtime's Python, so it imports
nothing but the standard library. CML runs this script in the project (``/home/cdsw``) with
the runtime's Python; it builds the project's venv as setup_environment does (the job then
finds it made and skips), and replaces itself with gunicorn in that venv, serving the API as
the control plane (``RAYDEPLOY_CONTROL_PLANE=1``: it owns the store in the project, runs the
runs, continues the one it ran after a restart) on ``127.0.0.1:$CDSW_APP_PORT``, which CML
publishes as the app's URL (so tokens are required there). Inside CML it takes the
workspace, its key and the project from CDSW_API_URL, CDSW_APIV2_KEY and CDSW_PROJECT_ID.

Its output goes to ``.raydeploy-control/control.log`` in the project: a bootstrap that waits
in vain for the URL shows its end.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

CONTROL_DIR = Path(".raydeploy-control")
LOG = CONTROL_DIR / "control.log"
VENV = Path(os.environ.get("RAYDEPLOY_VENV", ".venv"))
DIGEST_ENV = "RAYDEPLOY_CONTROL_DIGEST"  # (the bootstrap, control.py, sets it)


def config_intact(environ, text: str) -> bool:
    """The config in the project is the one the bootstrap wrote: its digest (with the token
    digests) is in this app's environment, which only the CML API changes. Every pod of the
    project can write the project's files; none can make this app start with a config of
    its own (fewer approvals, other principals)."""
    expected = environ.get(DIGEST_ENV)
    digests = environ.get("RAYDEPLOY_API_TOKEN_DIGESTS", "")
    return bool(expected) and hashlib.sha256((text + digests).encode()).hexdigest()[:16] == expected


def main() -> int:
    CONTROL_DIR.mkdir(mode=0o700, exist_ok=True)
    config = Path(os.environ.get("RAYDEPLOY_CONTROL_CONFIG", str(CONTROL_DIR / "config.yaml")))
    with open(LOG, "ab") as log:
        text = config.read_text() if config.exists() else ""
        if not config_intact(os.environ, text):
            log.write(f"control app: {config} is not the config the bootstrap wrote (changed "
                      f"in the project since): refusing to start; deploy_master.py --deploy "
                      f"writes it again\n".encode())
            return 2
        built = subprocess.run([sys.executable, "jobs/setup_environment.py", "--venv"],
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "RAYDEPLOY_VENV": str(VENV)})
        if built.returncode != 0:
            log.write(b"control app: the project venv could not be built\n")
            return built.returncode
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    project = str(Path.cwd())
    env = {**os.environ, "RAYDEPLOY_CONTROL_PLANE": "1", "RAYDEPLOY_API_HOST": "127.0.0.1",
           "RAYDEPLOY_CONFIG": str(config),
           "RAYDEPLOY_BASE_DIR": project, "PYTHONPATH": project, "GUNICORN_THREADS": "16"}
    python = str(VENV / "bin" / "python")
    os.execve(python, [python, "-m", "gunicorn", "-c", "api_server/gunicorn.conf.py",
                       "api_server.wsgi:app"], env)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
