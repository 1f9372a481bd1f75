"""The loopback Bot API server: just enough of Telegram for the bot's end-to-end tests.

It implements what snapfind's bot uses (getMe, getUpdates with offset and long-poll timeout,
getFile and file download, sendMessage, sendPhoto, sendMediaGroup with multipart uploads and
`attach://`, sendChatAction, answerCallbackQuery, editMessageText/ReplyMarkup,
setWebhook/deleteWebhook), checks the limits Telegram checks (caption and text length,
callback_data bytes, album size), records every call, and lets a test act as users and
disturb the bot: faults on one call (`inject`, `hold`; file downloads too), an outage of every
call (`outage`) or refused connections (`refuse_connections`). It binds 127.0.0.1 on a random
port and stops by itself after `lifetime` seconds.
"""

import asyncio
import io
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from PIL import Image

TOKEN = "123456789:TEST-loopback-token_0123456789abcdefghij"
BOT_ID = 123456789
GETFILE_LIMIT = 20 * 1024 * 1024  # Telegram's getFile download limit for bots
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DOWNLOAD = "download"  # the "method" of a file download, for `inject` and `hold`

# PTB JSON-encodes every non-string parameter; these are the ones the bot sends.
_JSON_FIELDS = {
    "media",
    "reply_markup",
    "allowed_updates",
    "reply_parameters",
    "link_preview_options",
    "entities",
    "caption_entities",
    "drop_pending_updates",
    "show_alert",
    "disable_notification",
    "protect_content",
}
# What Telegram says when it refuses a call for good (a fault's default description)
_REFUSALS = {
    "400": "Bad Request: query is too old and response timeout expired or query id is invalid",
    "403": "Forbidden: bot was blocked by the user",
}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "max_connections"}


@dataclass
class Call:
    """One request the bot made, as the server understood it."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    result: Any
    at: float = field(default_factory=time.monotonic)

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    def media_bytes(self) -> list[bytes]:
        """The uploaded photo bytes of a sendMediaGroup, in album order."""
        return [
            self.files[item["media"].removeprefix("attach://")] for item in self.params["media"]
        ]

    def captions(self) -> list[str]:
        return [item.get("caption", "") for item in self.params.get("media", [])]

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of every inline button, row by row."""
        markup = self.params.get("reply_markup") or {}
        return [
            (button["text"], button.get("callback_data", ""))
            for row in markup.get("inline_keyboard", [])
            for button in row
        ]


@dataclass
class _Fault:
    kind: str  # "400" | "403" | "500" | "429" | "timeout" | "slow"
    retry_after: int = 1
    hang: float = 5.0
    description: str = ""  # a 400's or 403's; empty: Telegram's usual one (`_REFUSALS`)


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class BotApiServer:
    """Async context manager; `base_url`/`base_file_url` go to the PTB builder."""

    def __init__(self, token: str = TOKEN, *, lifetime: float = 600.0) -> None:
        self.token = token
        self.lifetime = lifetime
        self.calls: list[Call] = []
        self.faults_served: list[tuple[str, str]] = []
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.confirmed_offset = 0
        self.getfile_limit = GETFILE_LIMIT  # a self-hosted Bot API server allows up to 2000 MB
        self.downloads: list[str] = []  # file_ids whose bytes were fetched
        self.held: list[str] = []  # methods of the calls that reached a `hold`, in order
        self.trickle: float | None = None  # seconds between the bytes of every file download
        self._pending: list[dict[str, Any]] = []
        self._files: dict[str, tuple[bytes, str, int]] = {}  # file_id -> (data, unique, size)
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message: dict[int, itertools.count] = {}
        self._update_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._faults: dict[str, deque[_Fault]] = {}
        self._holds: dict[str, deque[asyncio.Event]] = {}
        self._outage: tuple[float, int] | None = None  # (until, status): every call refused
        self._listening: asyncio.Task[None] | None = None  # listens again after a refusal
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[int]] = set()
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> "BotApiServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner, self.port = await listen(app)
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        self._watchdog = asyncio.create_task(self._stop_after(self.lifetime))

    async def stop(self) -> None:
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._listening is not None:
            self._listening.cancel()
        for task in list(self._deliveries):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _stop_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ---- acting as users -------------------------------------------------------------------

    def add_file(
        self, data: bytes, *, size: int | None = None, unique_id: str | None = None
    ) -> dict[str, Any]:
        """Store bytes as a Telegram file; `size` may claim more than `data` holds."""
        number = next(self._file_ids)
        file_id = f"FILE{number:06d}-{len(data)}"
        unique = unique_id or f"U{number:06d}"
        declared = len(data) if size is None else size
        self._files[file_id] = (data, unique, declared)
        return {"file_id": file_id, "file_unique_id": unique, "file_size": declared}

    async def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        thumb: bytes | None = None,
        unique_id: str | None = None,
        size: int | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        """The user sends a photo; sizes ascend like Telegram's, the thumbnail first."""
        sizes = []
        if thumb is not None:
            sizes.append({**self.add_file(thumb), **_dimensions(thumb)})
        sizes.append({**self.add_file(data, size=size, unique_id=unique_id), **_dimensions(data)})
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return await self.send_message(user_id, **content)

    async def send_document(
        self,
        user_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        size: int | None = None,
        unique_id: str | None = None,
    ) -> dict[str, Any]:
        ref = self.add_file(data, size=size, unique_id=unique_id)
        document = {**ref, "file_name": file_name, "mime_type": mime_type}
        return await self.send_message(user_id, document=document)

    async def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self.send_message(user_id, **content)

    async def send_message(self, user_id: int, **content: Any) -> dict[str, Any]:
        """The user sends any message content (sticker=..., video=..., location=...)."""
        return await self.push_update(self.message_update(user_id, **content))

    def message_update(self, user_id: int, **content: Any) -> dict[str, Any]:
        """The body of an update carrying a new message from `user_id` (not delivered)."""
        message = {
            "message_id": self._new_message_id(user_id),
            "date": int(time.time()),
            "chat": _chat(user_id),
            "from": _user(user_id),
            **content,
        }
        self._messages[(user_id, message["message_id"])] = message
        return {"message": message}

    async def press(self, user_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
        """The user presses the inline button carrying `data` under the bot's `message`."""
        query = {
            "id": f"CQ{next(self._file_ids)}",
            "from": _user(user_id),
            "chat_instance": f"ci{user_id}",
            "message": message,
            "data": data,
        }
        return await self.push_update({"callback_query": query})

    def numbered(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` as a complete update, with the next update_id."""
        return {"update_id": next(self._update_ids), **body}

    async def push_update(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates, or POST it to the webhook if one is set."""
        update = self.numbered(body)
        if self.webhook_url is not None:
            task = asyncio.create_task(self.post_to_webhook(update, self.webhook_secret))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
            return update
        async with self._changed:
            self._pending.append(update)
            self._changed.notify_all()
        return update

    async def post_to_webhook(self, update: dict[str, Any], secret: str | None) -> int:
        """Deliver `update` the way Telegram does; returns the webhook's HTTP status."""
        assert self._session is not None and self.webhook_url is not None
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with self._session.post(self.webhook_url, json=update, headers=headers) as reply:
            return reply.status

    # ---- faults ----------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        kind: str,
        *,
        times: int = 1,
        retry_after: int = 1,
        hang: float = 5.0,
        description: str = "",
    ) -> None:
        """Disturb the next `times` calls of `method`: answer 400 or 403 (`description`, or
        the usual one), answer 500, answer 429 (retry_after), hang `hang` seconds and drop the
        call ("timeout"), or answer normally after `hang` seconds ("slow")."""
        if kind not in {"400", "403", "500", "429", "timeout", "slow"}:
            raise ValueError(f"unknown fault {kind!r}")
        queue = self._faults.setdefault(method, deque())
        queue.extend(_Fault(kind, retry_after, hang, description) for _ in range(times))

    def outage(self, seconds: float, status: int = 502) -> None:
        """For the next `seconds`, answer every call (getUpdates and file downloads too) with
        `status`, as Telegram's front does while its Bot API is down."""
        self._outage = (time.monotonic() + seconds, status)

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening and drop every open connection for `seconds`, as a Bot API host
        that is down: the bot's calls meet refused connections. Returns at once."""
        assert self._runner is not None and self._runner.server is not None
        for site in list(self._runner.sites):
            await site.stop()
        for connection in list(self._runner.server.connections):
            connection.force_close()
        self._listening = asyncio.create_task(self._listen_again(seconds))

    async def _listen_again(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._runner is not None:
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def hold(self, method: str) -> asyncio.Event:
        """Keep the next call of `method` waiting until the returned event is set (then it is
        answered as usual, or refused if an outage began meanwhile): a reply the test holds
        in flight while it acts. `held` says when it arrived. `inject` and `hold` take
        DOWNLOAD as the method of a file download."""
        gate = asyncio.Event()
        self._holds.setdefault(method, deque()).append(gate)
        return gate

    # ---- waiting for the bot ---------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[Call], bool], *, timeout: float = 20.0, start: int = 0
    ) -> Call:
        """The first recorded call from index `start` on that satisfies `predicate`."""
        async with asyncio.timeout(timeout), self._changed:
            seen = start
            while True:
                for call in self.calls[seen:]:
                    if predicate(call):
                        return call
                seen = max(seen, len(self.calls))
                await self._changed.wait()

    async def reply(
        self, chat_id: int, method: str, *, timeout: float = 20.0, start: int = 0
    ) -> Call:
        return await self.wait_for(
            lambda c: c.method == method and c.chat_id == chat_id, timeout=timeout, start=start
        )

    def sent_to(self, chat_id: int, start: int = 0) -> list[Call]:
        """Calls addressed to `chat_id` (chat actions excluded)."""
        return [
            c for c in self.calls[start:] if c.chat_id == chat_id and c.method != "sendChatAction"
        ]

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.method == method)

    # ---- HTTP side -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        refusal = await self._disturb(method)
        if refusal is not None:
            return refusal
        params, files = await _read_params(request)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            result = await handler(params, files)
        except _ApiError as error:
            return _error(error.status, error.description)
        if method != "getUpdates":
            await self._record(Call(method, params, files, result))
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self._files:
            return web.Response(status=404)
        refusal = await self._disturb(DOWNLOAD)
        if refusal is not None:
            return refusal
        self.downloads.append(file_id)
        data = self._files[file_id][0]
        if self.trickle is None:
            return web.Response(body=data)
        return await _trickle(request, data, self.trickle)

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _disturb(self, method: str) -> web.Response | None:
        """What an outage, a hold or an injected fault does to this call (None: nothing)."""
        holds = self._holds.get(method)
        if holds:
            self.held.append(method)
            await holds.popleft().wait()
        if self._outage is not None:
            until, status = self._outage
            if time.monotonic() < until:
                self.faults_served.append((method, f"outage {status}"))
                return _error(status, HTTPStatus(status).phrase)
            self._outage = None
        fault = self._next_fault(method)
        if fault is None:
            return None
        self.faults_served.append((method, fault.kind))
        return await _apply(fault)

    def _next_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    # ---- Bot API methods -------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Snapfind",
            "username": "snapfind_test_bot",
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> list[Any]:
        if self.webhook_url is not None:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset", 0))
        limit = int(params.get("limit", 100))
        timeout = float(params.get("timeout", 0))
        deadline = time.monotonic() + timeout
        async with self._changed:
            if offset > 0:
                self.confirmed_offset = max(self.confirmed_offset, offset)
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
            while not self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                try:
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
                except TimeoutError:
                    return []
            return self._pending[:limit]

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        if file_id not in self._files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        _, unique, size = self._files[file_id]
        if size > self.getfile_limit:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": size,
            "file_path": f"files/{file_id}",
        }

    async def _m_sendMessage(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        text = str(params.get("text", ""))
        _check_text(text, 4096, "message text")
        _check_markup(params.get("reply_markup"))
        return self._bot_message(params, text=text)

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        photo = _resolve(params.get("photo"), files, "photo")
        _check_caption(params.get("caption"))
        _check_markup(params.get("reply_markup"))
        return self._bot_message(
            params, photo=self._photo_sizes(photo), caption=params.get("caption")
        )

    async def _m_sendMediaGroup(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _ApiError(400, "Bad Request: wrong number of media in the album (2-10)")
        group = f"G{next(self._file_ids)}"
        messages = []
        for item in media:
            if item.get("type") != "photo":
                raise _ApiError(400, "Bad Request: unsupported media type in album")
            photo = _resolve(item.get("media"), files, "media")
            _check_caption(item.get("caption"))
            messages.append(
                self._bot_message(
                    params,
                    photo=self._photo_sizes(photo),
                    caption=item.get("caption"),
                    media_group_id=group,
                )
            )
        return messages

    async def _m_sendChatAction(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        self._check_chat(params)
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        if "text" in params:
            _check_text(str(params["text"]), 200, "callback answer text")
        return True

    async def _m_editMessageText(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        message = self._stored(params)
        text = str(params.get("text", ""))
        _check_text(text, 4096, "message text")
        _check_markup(params.get("reply_markup"))
        message["text"] = text
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_editMessageReplyMarkup(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        message = self._stored(params)
        _check_markup(params.get("reply_markup"))
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        self.webhook_url = str(params["url"])
        self.webhook_secret = params.get("secret_token")
        pending, self._pending = self._pending, []
        for update in pending:
            await self.push_update({k: v for k, v in update.items() if k != "update_id"})
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        self.webhook_url = None
        self.webhook_secret = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _m_getWebhookInfo(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        return {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    # ---- helpers ---------------------------------------------------------------------------

    def _new_message_id(self, chat_id: int) -> int:
        return next(self._next_message.setdefault(chat_id, itertools.count(1)))

    def _check_chat(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int) or chat_id not in self._next_message:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _bot_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = self._check_chat(params)
        message = {
            "message_id": self._new_message_id(chat_id),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Snapfind"},
            **{k: v for k, v in content.items() if v is not None},
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (self._check_chat(params), int(params.get("message_id", 0)))
        if key not in self._messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self._messages[key]

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        return [{**self.add_file(data), **_dimensions(data)}]


async def listen(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 at a free port; returns its runner (to clean up) and port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}


def _chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}


def _dimensions(data: bytes) -> dict[str, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # a test may send bytes that are not an image at all
        width, height = 1, 1
    return {"width": width, "height": height}


async def _apply(fault: _Fault) -> web.Response | None:
    """The response a fault gives instead of the real one (None: answer normally, late)."""
    if fault.kind == "slow":
        await asyncio.sleep(fault.hang)
        return None
    if fault.kind == "timeout":  # a lost request: nothing recorded, no answer in time
        await asyncio.sleep(fault.hang)
        return _error(500, "Internal Server Error")
    if fault.kind in _REFUSALS:
        return _error(int(fault.kind), fault.description or _REFUSALS[fault.kind])
    if fault.kind == "429":
        return _error(
            429,
            f"Too Many Requests: retry after {fault.retry_after}",
            parameters={"retry_after": fault.retry_after},
        )
    return _error(500, "Internal Server Error")


async def _trickle(request: web.Request, data: bytes, every: float) -> web.StreamResponse:
    """`data` one byte every `every` seconds: a transfer that never stalls long enough for a
    read timeout, yet never ends."""
    response = web.StreamResponse(headers={"Content-Length": str(len(data))})
    await response.prepare(request)
    for offset in range(len(data)):
        await response.write(data[offset : offset + 1])
        await asyncio.sleep(every)
    await response.write_eof()
    return response


def _error(status: int, description: str, **extra: Any) -> web.Response:
    body = {"ok": False, "error_code": status, "description": description, **extra}
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Form, multipart or JSON body (plus query string) → typed parameters and file parts."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        params.update(await request.json())
        return params, files
    for name, value in (await request.post()).items():
        if isinstance(value, web.FileField):
            files[name] = value.file.read()
        elif name in _JSON_FIELDS:
            params[name] = json.loads(value)
        elif name in _INT_FIELDS:
            params[name] = int(value)
        else:
            params[name] = value
    return params, files


def _resolve(value: Any, files: dict[str, bytes], field_name: str) -> bytes:
    """An `attach://name` reference, or a part uploaded under the field's own name."""
    if isinstance(value, str) and value.startswith("attach://"):
        name = value.removeprefix("attach://")
        if name not in files:
            raise _ApiError(400, f"Bad Request: file {name!r} not found in the request")
        return files[name]
    if field_name in files:
        return files[field_name]
    raise _ApiError(400, "Bad Request: wrong remote file identifier or URL specified")


def _check_text(text: str, limit: int, what: str) -> None:
    if not text.strip():
        raise _ApiError(400, f"Bad Request: {what} is empty")
    if len(text) > limit:
        raise _ApiError(400, f"Bad Request: {what} is too long")


def _check_caption(caption: Any) -> None:
    if caption is not None and len(str(caption)) > 1024:
        raise _ApiError(400, "Bad Request: message caption is too long")


def _check_markup(markup: Any) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
