"""The materials download server: a site fetches its PDFs through the links in its mail, and
each download records the matching `*_downloaded` fact for that site."""

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from examflow.db import session_scope
from examflow.settings import link_secret
from models.domain import SHANGHAI
from models.facts import record_fact
from models.links import KIND_FACTS, token_ok
from models.site_materials import site_materials
from models.sittings import UnknownSittingError, get_sitting

PATH_RE = re.compile(
    r"^/materials/(?P<sitting>[a-z0-9-]+)/(?P<site>[A-Za-z0-9-]+)/(?P<kind>[a-z_]+)\.pdf$"
)


def render_for_site(sitting: str, site: str, kind: str) -> bytes:
    from notifications.documents.materials import RENDERERS

    with session_scope() as session:
        materials = site_materials(session, get_sitting(session, sitting), site)
    return RENDERERS[kind](materials)


class MaterialsHandler(BaseHTTPRequestHandler):
    server_version = "examflow-materials"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        match = PATH_RE.match(url.path)
        token = parse_qs(url.query).get("token", [""])[0]
        if match is None or match["kind"] not in KIND_FACTS:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        sitting, site, kind = match["sitting"], match["site"], match["kind"]
        if not token_ok(link_secret(), sitting, site, token):
            self.send_error(HTTPStatus.FORBIDDEN, "this link is not valid for this site")
            return
        try:
            body = render_for_site(sitting, site, kind)
            with session_scope() as session:
                record_fact(
                    session,
                    sitting,
                    site,
                    KIND_FACTS[kind],
                    datetime.now(SHANGHAI),
                    source="download",
                )
        except UnknownSittingError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/pdf")
        self.send_header(
            "Content-Disposition", f'attachment; filename="{sitting}-{site}-{kind}.pdf"'
        )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the URL carries a token; downloads are recorded as site facts instead."""


@contextmanager
def materials_server(port: int, host: str = "127.0.0.1") -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((host, port), MaterialsHandler)
    thread = threading.Thread(target=server.serve_forever, name="materials-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def write_materials(sitting: str, sites: list[str], out_dir: Path) -> dict[str, dict[str, Path]]:
    from notifications.documents.materials import write_site_materials

    written = {}
    with session_scope() as session:
        row = get_sitting(session, sitting)
        for site in sites:
            written[site] = write_site_materials(site_materials(session, row, site), out_dir)
    return written
