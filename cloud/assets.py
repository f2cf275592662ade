"""Static files with content-versioned URLs, so browsers cache them instead of asking again.

Every page links ``app.css``, ``plots.js`` and friends. Without caching headers a browser
revalidates each one on every page view (a request and a 304 apiece). ``url_for('static', ...)``
here appends ``?v=<hash of the file's content>``; a request carrying the current hash is answered
with a one-year ``immutable`` lifetime, and a changed file gets a new URL, so nobody keeps a stale
script after an upgrade. Requests without ``v`` (or with an old one) keep Flask's revalidation.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from flask import Flask, Response, request

VERSION_ARG = "v"
IMMUTABLE_MAX_AGE_S = 365 * 24 * 3600  # a versioned URL never changes content


class AssetVersions:
    """Content hashes of the files in ``folder``, recomputed when a file's mtime or size moves."""

    def __init__(self, folder: str):
        self.folder = folder
        self._known: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def version(self, filename: str) -> str | None:
        """Short hex digest of ``filename`` (relative to the folder); None if it is missing."""
        path = os.path.join(self.folder, filename)
        if os.path.commonpath([os.path.realpath(path), os.path.realpath(self.folder)]) != (
            os.path.realpath(self.folder)
        ):
            return None  # never hash anything outside the static folder
        try:
            stat = os.stat(path)
        except OSError:
            return None
        with self._lock:
            known = self._known.get(filename)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()[:12]
        with self._lock:
            self._known[filename] = (stat.st_mtime_ns, stat.st_size, digest)
        return digest


def install_asset_versions(app: Flask) -> AssetVersions:
    versions = AssetVersions(app.static_folder or "")

    @app.url_defaults
    def add_version(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "filename" in values and VERSION_ARG not in values:
            digest = versions.version(values["filename"])
            if digest is not None:
                values[VERSION_ARG] = digest

    @app.after_request
    def cache_versioned(response: Response) -> Response:
        if request.endpoint != "static" or response.status_code != 200:
            return response
        wanted = request.args.get(VERSION_ARG)
        filename = (request.view_args or {}).get("filename", "")
        if wanted and wanted == versions.version(filename):
            response.cache_control.no_cache = False  # Flask's default for unversioned files
            response.cache_control.public = True
            response.cache_control.max_age = IMMUTABLE_MAX_AGE_S
            response.cache_control.immutable = True
        return response

    return versions
