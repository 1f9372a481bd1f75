"""A loopback load balancer: Telegram's webhook posts go to the bot replicas in turn.

It stands where Caddy stands in deploy/compose.yaml: the Bot API server posts every update to
it, it forwards the request (body and secret header) to the next replica and answers with
that replica's status. `routed` records which replica got which update_id.
"""

from aiohttp import ClientSession, ClientTimeout, web

from .server import SECRET_HEADER, listen


class Dispatcher:
    """Async context manager; point the Bot API server's webhook at `url`."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.routed: list[tuple[int, int]] = []  # (update_id, replica index)
        self._turn = 0
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __aenter__(self) -> "Dispatcher":
        app = web.Application()
        app.router.add_post("/hook", self._forward)
        self._runner, self.port = await listen(app)
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def replica_of(self, update_id: int) -> list[int]:
        """The replicas `update_id` was forwarded to, in order."""
        return [replica for uid, replica in self.routed if uid == update_id]

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        replica, self._turn = self._turn, (self._turn + 1) % len(self.targets)
        update_id = (await request.json()).get("update_id", 0)
        self.routed.append((update_id, replica))
        headers = {"Content-Type": "application/json"}
        if SECRET_HEADER in request.headers:
            headers[SECRET_HEADER] = request.headers[SECRET_HEADER]
        async with self._session.post(self.targets[replica], data=body, headers=headers) as reply:
            return web.Response(status=reply.status, body=await reply.read())
