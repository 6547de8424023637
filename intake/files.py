"""Stored remittance files: content-addressed, so the same file twice is one file and one parent workflow."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def file_id_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def stored_path(data_dir: str | Path, file_id: str) -> Path:
    if not file_id.isalnum():
        raise ValueError(f"bad file id {file_id!r}")
    return Path(data_dir) / "remittances" / f"{file_id}.csv"


def store(data_dir: str | Path, raw: bytes) -> str:
    """Write ``raw`` under its sha256 (atomically; a file already there is kept) and return the id."""
    file_id = file_id_of(raw)
    path = stored_path(data_dir, file_id)
    if path.exists():
        return file_id
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
    os.replace(tmp, path)
    return file_id
