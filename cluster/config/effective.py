"""The config as it acts, flat (``workers.count: 2``): what plans compare with the last
successful run's, and what tells two runs of the same desired state apart from others."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path


def effective_config(config) -> dict:
    """The config as it acts, flat (``workers.count``), secrets shown only as set or not."""
    flat: dict = {}

    def walk(value, prefix: str) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                if f.name in ("source", "base_dir", "warnings", "document"):
                    continue
                item = getattr(value, f.name)
                if not f.repr:  # a secret (repr=False): say whether it is set, never what
                    flat[f"{prefix}{f.name}"] = "(set)" if item else None
                else:
                    walk(item, f"{prefix}{f.name}.")
        elif isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            for key, item in value.items():
                walk(item, f"{prefix}{key}.")
        elif isinstance(value, (list, tuple)) and any(dataclasses.is_dataclass(v) for v in value):
            for index, item in enumerate(value):
                walk(item, f"{prefix}{index}.")
        else:
            flat[prefix.rstrip(".")] = str(value) if isinstance(value, Path) else value
    walk(config, "")
    return json.loads(json.dumps(flat, default=list))
