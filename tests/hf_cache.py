"""A Hugging Face hub cache laid out as huggingface_hub lays it on Linux, for the MODEL_NAME tests:
$HF_HOME/hub/models--{org}--{name}/{blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>,
refs/main = <commit>}."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def lay_out_hub_cache(files: Path, hf_home: Path, repo_id: str, commit: str = COMMIT) -> Path:
    """Put every file of the folder `files` into the cache as `repo_id` at `commit` (refs/main); returns the
    snapshot folder."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for source in sorted(p for p in files.iterdir() if p.is_file()):
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        if not blob.exists():
            shutil.copy2(source, blob)
        link = snapshot / source.name
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / ".." / "blobs" / digest)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
