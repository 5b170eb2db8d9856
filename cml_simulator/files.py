"""Project files: paths relative to the project directory (CML: /home/cdsw).

Listing (ListProjectFiles) is not paginated; an empty path, ``.`` and ``%2F`` all name the
project root, and each entry's ``path`` is relative to the directory listed (a basename), as
CML answers. ``file_size`` is a string (int64) and left out for directories. An upload never
overwrites: an existing path is stored as ``name(1).ext``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from flask import Flask, jsonify, request, send_file
from werkzeug.routing import PathConverter

from cml_simulator.common import SimError


class AnyPath(PathConverter):
    """A path that may be empty or start with "/" (``files/`` and ``files/%2F`` list the root)."""
    regex = ".*"
    part_isolating = False  # werkzeug would infer True from a regex without "/"


def add_file_routes(app: Flask, ws) -> None:
    app.url_map.converters["anypath"] = AnyPath
    app.url_map.merge_slashes = False  # "files/%2F" arrives as "files//": not a redirect

    def project_path(project_id: str, rel: str) -> Path:
        root = ws.project(project_id).dir.resolve()
        target = (root / rel.lstrip("/")).resolve()
        if not target.is_relative_to(root):
            raise SimError(400, f"path {rel!r} leaves the project")
        return target

    @app.post("/api/v2/projects/<project_id>/files")
    def upload(project_id):
        written = []
        root = ws.project(project_id).dir.resolve()
        for name, storage in request.files.items():
            target = project_path(project_id, name)
            if target == root:
                raise SimError(400, "an upload needs a file path")
            n = 1
            while target.exists():  # an existing path is not overwritten: name(1).ext
                target = target.with_name(f"{Path(name).stem}({n}){Path(name).suffix}")
                n += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            storage.save(target)
            written.append(str(target.relative_to(root)))
        return jsonify({"files": written})

    @app.route("/api/v2/projects/<project_id>/files/<anypath:file_ref>",
               methods=["GET", "POST", "DELETE"])
    def files(project_id, file_ref):
        if request.method == "POST":
            if not file_ref.endswith(":download"):
                raise SimError(404, f"no route {request.path}")
            return download(project_path(project_id, file_ref[: -len(":download")]), file_ref[:-9])
        target = project_path(project_id, file_ref)
        if not target.exists():
            raise SimError(404, f"file {file_ref} not found")
        if request.method == "DELETE":
            return delete(target, ws.project(project_id).dir.resolve())
        entries = [target] if target.is_file() else sorted(target.iterdir())
        return jsonify({"files": [file_info(e) for e in entries]})


def download(target: Path, name: str):
    if not target.is_file():
        raise SimError(404, f"file {name} not found")
    return send_file(target, mimetype="application/octet-stream")


def delete(target: Path, root: Path):
    if target == root:
        raise SimError(400, "the project root cannot be deleted")
    if target.is_dir():  # DeleteProjectFile: "Delete a file or directory"
        shutil.rmtree(target)
    else:
        target.unlink()
    return jsonify({})


def file_info(entry: Path) -> dict:
    """FileInfo of one entry, named relative to the directory listed."""
    info = {"path": entry.name, "is_dir": entry.is_dir()}
    if not entry.is_dir():
        info["file_size"] = str(entry.stat().st_size)
    return info
