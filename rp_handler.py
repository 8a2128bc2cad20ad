"""Entry for tools that start the worker by file path (runpod.toml's handler_path, `runpodctl project dev`).

Running a file puts its own folder on sys.path. `handler/__main__.py` run as a path would see only
`handler/` and fail to import `shared`; this file sits at the repository root, so both packages import.
The image's CMD (`python -m handler`) is the same entry.
"""

from __future__ import annotations

import sys

from handler.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
