"""What the CML tests share: the simulator in a process of its own, its key, the public
swagger its answers are checked against, a script in a simulated project."""
from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import requests

from cml_simulator.running import SimulatorProcess
from tests.conftest import ROOT, clean_env

# the public v2 swagger (subset for our endpoints), kept beside the simulator it specifies
SWAGGER = json.loads((ROOT / "cml_simulator" / "cml-api-v2-swagger.json").read_text())
KEY = "sim-key-0123456789abcdef"


def conforms(instance: dict, definition: str) -> None:
    schema = {"$ref": f"#/definitions/{definition}", "definitions": SWAGGER["definitions"]}
    jsonschema.validate(instance, schema)


class Simulator(SimulatorProcess):
    def __init__(self, tmp: Path, *flags: str):
        super().__init__(tmp, *flags, api_key=KEY, env=clean_env(), ready_seconds=20)


def runtime_of(sim: Simulator) -> str:
    """The runtime the simulator lists: jobs and apps of ML Runtimes projects must name one.
    Asked until answered (a simulator may be injecting faults)."""
    for _ in range(50):
        answer = requests.get(sim.url + "/api/v2/runtimes",
                              headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        if answer.status_code == 200:
            return answer.json()["runtimes"][0]["image_identifier"]
        time.sleep(0.05)
    raise AssertionError(f"the simulator did not list its runtimes: {answer.status_code}")


def write_script(sim_root: Path, project_id: str, name: str, text: str) -> None:
    path = sim_root / "projects" / project_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
