"""create_app(settings) -> FastAPI: the school portal's pages, error pages and static files.

Access lines name the method, path and status only: a query string may carry a sign-in or
download token, so it is never logged (nor is uvicorn's own access log used).
"""

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examflow.settings import Settings, get_settings
from portal.auth import NotSignedIn
from portal.context import Portal, portal_of
from portal.routes import (
    certificates,
    materials,
    registration,
    results,
    signin,
    sites,
    sitting,
    verify,
)

log = logging.getLogger("portal.access")

ERROR_TITLES = {
    403: "无权执行此操作",
    404: "页面不存在",
    405: "不支持此操作",
    409: "当前不在办理时间内",
    410: "链接无效或已过期",
    413: "文件过大",
    422: "提交的内容有误",
    429: "请求过于频繁",
}


SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class AccessLog:
    """Every response gets the security headers (unless it set its own) and one access line:
    method, path, status, time; never the query string. Plain ASGI: Starlette's
    BaseHTTPMiddleware costs a millisecond a request, a tenth of a sitting page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info(
                "%s %s %d %.0fms",
                scope["method"],
                scope["path"],
                status or 500,
                (time.perf_counter() - started) * 1000,
            )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="examflow 学校服务平台", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = Portal(settings)
    app.mount("/static", StaticFiles(packages=[("portal", "static")]), name="static")
    app.include_router(verify.router)  # first: the public page anyone's QR code opens
    app.include_router(signin.router)
    app.include_router(sitting.router)
    app.include_router(materials.router)
    app.include_router(registration.router)
    app.include_router(sites.router)
    app.include_router(results.router)
    app.include_router(certificates.router)

    app.add_middleware(AccessLog)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return RedirectResponse("/", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def error_page(request: Request, exc: StarletteHTTPException) -> Response:
        portal = portal_of(request)
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else ""
        return portal.page(
            request,
            "error.html",
            status_code=exc.status_code,
            title=ERROR_TITLES.get(exc.status_code, "出错了"),
            detail=detail,
        )

    return app


def app_from_environment() -> FastAPI:
    """The factory uvicorn's workers call (settings from the environment); each worker
    process logs its access lines to stderr like the parent."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return create_app(get_settings())
