"""Request size limit: a body over `MAX_BODY_BYTES` gets 413 problem+json before any parsing.

The largest legitimate body (a clip with 100 segments and a 2 KB callback URL) is a few
kilobytes; 64 KiB leaves room and keeps a hostile body from costing parse time or memory.
A pure ASGI middleware: a declared `Content-Length` over the limit is refused at once; a
body without one (chunked) is read up to the limit and refused as soon as it passes it.
Requests without a body pass straight through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response

#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """Answer 413 to request bodies larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await self.app(scope, _replay(messages, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "body_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            field="body",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands out the buffered messages first, then the real one."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
