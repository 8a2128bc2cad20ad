"""Server-sent events as both adapters send them: one `data: <json>` event per item."""

from __future__ import annotations

import json
from typing import Any

DONE = "data: [DONE]\n\n"


def sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
