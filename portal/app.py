"""create_app(settings) -> FastAPI: the school portal's pages, error pages and static files.

Access lines name the method, path and status only: a query string may carry a sign-in or
download token, so it is never logged (nor is uvicorn's own access log used).
"""

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="examflow 学校服务平台", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = Portal(settings)
    app.mount("/static", StaticFiles(packages=[("portal", "static")]), name="static")
    app.include_router(signin.router)
    app.include_router(sitting.router)
    app.include_router(materials.router)
    app.include_router(registration.router)
    app.include_router(sites.router)
    app.include_router(results.router)
    app.include_router(verify.router)
    app.include_router(certificates.router)

    @app.middleware("http")
    async def access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        log.info(
            "%s %s %d %.0fms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

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
