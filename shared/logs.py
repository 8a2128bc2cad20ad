"""The logging policy's one shared piece: where caller text may be logged.

Logs hold job ids, error codes, timings and sizes, never caller text or replies. Code that
wants text in a log (prompt ids, exception messages) writes it to `content_log`, which is
silent unless the operator sets DEBUG_LOG_CONTENT (handler/logs.py turns it on).
"""

from __future__ import annotations

import logging

content_log = logging.getLogger("chatw.content")
content_log.setLevel(logging.CRITICAL + 1)  # off until an operator turns it on
