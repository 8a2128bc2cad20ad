"""A local stand-in for PostgREST (not packaged here), over the real PostgreSQL: it answers exactly the
read supabase-js makes for `prompt_templates` — GET /rest/v1/<table>?select=cols&col=eq.value&order=col.desc
&limit=n — and checks the service key like Supabase's gateway does. Given a key set, the same server also
stands in for Supabase Auth's JWKS endpoint (GET /auth/v1/.well-known/jwks.json, no key needed, as on
Supabase; see auth_standin.py). Anything else is 404."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import sql

TABLES = {"prompt_templates"}
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def build_query(table: str, params: list[tuple[str, str]]) -> tuple[sql.Composed, list[Any]]:
    columns, where, values, order, limit = ["*"], [], [], [], None
    for key, value in params:
        if key == "select":
            columns = value.split(",")
        elif key == "order":
            column, _, direction = value.partition(".")
            order.append(
                sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL("desc" if direction == "desc" else "asc"))
            )
        elif key == "limit":
            limit = int(value)
        elif value.startswith("eq."):
            where.append(sql.SQL("{}::text = %s").format(sql.Identifier(key)))
            values.append(value[3:])
        else:
            raise ValueError(f"unsupported parameter {key}")
    if not all(NAME.match(c) for c in columns if c != "*"):
        raise ValueError("bad column")
    cols = sql.SQL("*") if columns == ["*"] else sql.SQL(", ").join(map(sql.Identifier, columns))
    query = sql.SQL("select {} from {}").format(cols, sql.Identifier(table))
    if where:
        query += sql.SQL(" where ") + sql.SQL(" and ").join(where)
    if order:
        query += sql.SQL(" order by ") + sql.SQL(", ").join(order)
    if limit is not None:
        query += sql.SQL(" limit {}").format(sql.Literal(limit))
    return query, values


class PostgrestStandIn:
    def __init__(self, dsn: str, service_key: str, jwks: dict[str, Any] | None = None) -> None:
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                stand_in.requests.append(self.path)
                if jwks is not None and url.path == "/auth/v1/.well-known/jwks.json":
                    return self._send(200, jwks)
                table = url.path.removeprefix("/rest/v1/")
                if self.headers.get("apikey") != service_key:
                    return self._send(401, {"message": "Invalid API key"})
                if table not in TABLES:
                    return self._send(404, {"message": f"relation {table} does not exist"})
                try:
                    query, values = build_query(table, parse_qsl(url.query))
                except ValueError as exc:
                    return self._send(400, {"message": str(exc)})
                with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                    rows = cur.execute(query, values).fetchall()
                return self._send(200, rows)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
