"""An Upstash-REST-compatible bridge in front of a local Redis, for development and tests.

It plays the role of Upstash's own serverless-redis-http: `POST /` with a command array,
`POST /pipeline` and `POST /multi-exec` with arrays of commands, bearer-token auth, and
the `Upstash-Encoding: base64` response encoding. Run:

    python -m infra.local.bridge --port 8079 --redis-url redis://127.0.0.1:6379/0 --token dev-bridge-token-local

then set UPSTASH_REDIS_REST_URL=http://127.0.0.1:8079 and UPSTASH_REDIS_REST_TOKEN=dev-bridge-token-local.
`--delay-ms` adds latency to every request (a test stand-in for a slow Redis: e.g. 1500 for
"answers in 1.5 s per call"); tests change it while the bridge runs with `POST /_bridge/delay
{"ms": N}` (same token). The delay comes before Redis runs the command, so a client that gives up
waiting still has its write land later. `GET /_bridge/stats` counts the commands received and
those waiting in the delay or running now, so a test can act while a write is in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError


def _encode(value: Any, b64: bool) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_encode(v, b64) for v in value]
    if isinstance(value, bool):
        return "OK" if value else None
    if isinstance(value, str) and b64 and value != "OK":
        return base64.b64encode(value.encode()).decode()
    return value


class Bridge:
    def __init__(self, redis_url: str, token: str, delay_ms: int = 0) -> None:
        self.redis = aioredis.from_url(redis_url, decode_responses=False)
        self.token = token
        self.delay_s = delay_ms / 1000
        self.received = 0
        self.in_flight = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/", self.single)
        app.router.add_post("/pipeline", self.pipeline)
        app.router.add_post("/multi-exec", self.multi_exec)
        app.router.add_post("/_bridge/delay", self.set_delay)
        app.router.add_get("/_bridge/stats", self.stats)
        return app

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response({"received": self.received, "in_flight": self.in_flight})

    async def set_delay(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.delay_s = float(body["ms"]) / 1000
        return web.json_response({"result": "OK"})

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return web.json_response({"error": "Unauthorized"}, status=401)
        if request.path.startswith("/_bridge/"):
            return await handler(request)
        self.received += 1
        self.in_flight += 1
        try:
            if self.delay_s:
                await request.read()  # the body first: a client that gives up waiting still has its command run
                await asyncio.sleep(self.delay_s)
            return await handler(request)
        finally:
            self.in_flight -= 1

    @staticmethod
    async def _commands(request: web.Request, nested: bool) -> list[Any]:
        body = json.loads(await request.read())
        if not isinstance(body, list) or (nested and not all(isinstance(c, list) and c for c in body)) or not body:
            raise web.HTTPBadRequest(text=json.dumps({"error": "ERR body must be a command array"}))
        return body

    async def single(self, request: web.Request) -> web.Response:
        command = await self._commands(request, nested=False)
        b64 = request.headers.get("Upstash-Encoding") == "base64"
        try:
            result = await self.redis.execute_command(*command)
        except RedisError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"result": _encode(result, b64)})

    async def pipeline(self, request: web.Request) -> web.Response:
        return await self._batch(request, transaction=False)

    async def multi_exec(self, request: web.Request) -> web.Response:
        return await self._batch(request, transaction=True)

    async def _batch(self, request: web.Request, transaction: bool) -> web.Response:
        commands = await self._commands(request, nested=True)
        b64 = request.headers.get("Upstash-Encoding") == "base64"
        pipe = self.redis.pipeline(transaction=transaction)
        for command in commands:
            pipe.execute_command(*command)
        try:
            results = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        out = [{"error": str(r)} if isinstance(r, Exception) else {"result": _encode(r, b64)} for r in results]
        return web.json_response(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--token", required=True)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    bridge = Bridge(args.redis_url, args.token, args.delay_ms)
    web.run_app(bridge.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
