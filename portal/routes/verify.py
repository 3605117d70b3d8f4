"""The public verification page: what a certificate's QR code opens, for anyone, signed in or not.

``/verify/<number>`` says whether the certificate is valid, revoked or unknown, with the
holder's name, level, sitting, the issuing parties and the date, never the ID number;
``/verify/<number>.json`` is the credential itself (to check both proofs offline); a holder
can check an ID number against the credential's salted digest (POST, CSRF, nothing stored);
``/status/<sitting>/revocation`` is the organiser-signed revocation list the credentials point
to, and ``/keys.json`` the public keys both are checked against (for checking offline).

ID checks are limited per certificate and per client address an hour, counted in the database
(``note_holder_check``), so every portal worker shares the counts. Answers are cacheable
(``Cache-Control`` with an ``ETag``) and, against floods, each client address is also limited
to PAGE_LIMIT requests a minute per worker (in memory: a database write per page view would
cost the page its speed). A credential's verification is remembered per (number, batch
digest): keys revoked later do not change proofs made before; the key registry is read only
for a credential not yet verified. A view is one session and two statements built once (the
credential by number, the revocation in force); an anonymous visitor's page is rendered once
per (number, credential, revocation) and only the visitor's CSRF token is put in per view; the
stored text is served as it is, encoded once (``benchmarks/verify_page.py`` measures it against
a bare endpoint doing that lookup).
"""

import hashlib
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from models.certificates import (
    HOLDER_CHECKS_PER_CLIENT_PER_HOUR,
    HOLDER_CHECKS_PER_HOUR,
    HolderCheckLimit,
    RevocationInForce,
    issued_credential,
    note_holder_check,
    published_status_list,
    reissued_at,
    revocation_in_force,
    status_index_of,
    verification_keys,
)
from models.credentials.keys import ORGANISER, RegisteredKey
from models.credentials.published_keys import published_keys
from models.credentials.verification import CredentialVerifier, id_matches
from models.domain import in_shanghai
from portal.auth import anonymous_csrf, check_anonymous_csrf, client_address, set_anonymous_csrf
from portal.context import portal_of

router = APIRouter()

PAGE_LIMIT = 120  # requests a minute per client address and worker process
MAX_ID = 32
CSRF_SLOT = "csrf-slot-of-this-visitor"  # never a token: tokens are 43 URL-safe characters


class RateLimiter:
    """A sliding one-minute window per key, in this process."""

    def __init__(self, per_minute: int, keys: int = 50_000) -> None:
        self.per_minute, self._keys = per_minute, keys
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            times = self._seen.pop(key, None) or deque()
            while times and times[0] <= now - 60:
                times.popleft()
            allowed = len(times) < self.per_minute
            if allowed:
                times.append(now)
            self._seen[key] = times
            if len(self._seen) > self._keys:
                self._seen.popitem(last=False)
            return allowed


@dataclass(frozen=True)
class Verdict:
    """One issued credential as the page shows it (no ID number, no digest), and as the
    ``.json`` answer serves it (the stored text, encoded once, and its ETag)."""

    number: str
    credential: dict[str, Any]
    body: bytes
    etag: str
    status_index: int | None
    ok: bool
    signed_by: tuple[str, ...]
    problems: tuple[str, ...]
    reissued_at: datetime | None  # when an earlier version was superseded by this one


class Verdicts:
    """Verification results remembered per (number, batch digest), bounded; the verifier
    (and its memo of batch signatures) is kept while the key registry is unchanged."""

    def __init__(self, size: int = 20_000) -> None:
        self._memo: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._verifier: tuple[dict[str, RegisteredKey], CredentialVerifier] | None = None

    def get(self, session: Session, number: str) -> Verdict | None:
        """The verdict on the credential numbered ``number`` as now stored, if issued: the
        keys are read only for a credential not verified before."""
        issued = issued_credential(session, number)
        if issued is None:
            return None
        key = (number, issued.batch_digest)
        with self._lock:
            found = self._memo.get(key)
        if found is not None:
            return found
        credential = json.loads(issued.text)
        report = self._verifier_for(verification_keys(session)).verify(credential)
        index = status_index_of(credential)
        verdict = Verdict(
            number,
            credential,
            issued.text.encode("utf-8"),
            _etag(issued.text),
            index,
            report.ok,
            tuple(report.signed_by),
            tuple(report.problems),
            reissued_at(session, number, index),
        )
        with self._lock:
            self._memo[key] = verdict
            if len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return verdict

    def _verifier_for(self, keys: dict[str, RegisteredKey]) -> CredentialVerifier:
        with self._lock:
            if self._verifier is None or self._verifier[0] != keys:
                self._verifier = (keys, CredentialVerifier(keys))
            return self._verifier[1]


class RenderedPages:
    """The page as an anonymous visitor sees it, rendered once per (number, verdict digest,
    revocation in force) with CSRF_SLOT where each visitor's own token goes: most views are
    of the same few certificates, and the template is most of a view's own work. Bounded."""

    def __init__(self, size: int = 5_000) -> None:
        self._html: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def html(self, key: tuple[str, str, str], render: Callable[[], str]) -> str:
        with self._lock:
            found = self._html.get(key)
            if found is not None:
                self._html.move_to_end(key)
                return found
        rendered = render()
        with self._lock:
            self._html[key] = rendered
            if len(self._html) > self._size:
                self._html.popitem(last=False)
        return rendered


@dataclass
class VerifyState:
    """One portal worker's rate limiter and memories for the public pages."""

    limits: RateLimiter
    verdicts: Verdicts
    pages: RenderedPages


def _state(request: Request) -> VerifyState:
    state = request.app.state
    if not hasattr(state, "verify"):
        state.verify = VerifyState(RateLimiter(PAGE_LIMIT), Verdicts(), RenderedPages())
    found = state.verify
    assert isinstance(found, VerifyState)
    return found


def _limited(request: Request) -> Verdicts:
    state = _state(request)
    if not state.limits.allow(client_address(request)):
        raise HTTPException(status_code=429, detail="查询过于频繁，请稍后再试")
    return state.verdicts


def _revocation(session: Session, verdict: Verdict | None) -> RevocationInForce | None:
    if verdict is None or verdict.status_index is None:
        return None
    return revocation_in_force(session, verdict.status_index)


def _etag(*parts: str) -> str:
    return '"' + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32] + '"'


def _cached(request: Request, etag: str, private: bool) -> Response | None:
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=_cache_headers(etag, private))
    return None


def _cache_headers(etag: str, private: bool) -> dict[str, str]:
    scope = "private" if private else "public"
    # no-cache: kept, but asked again each time (a 304 when unchanged), because a revocation
    # or a re-issue must show on the very next look, not a minute later
    return {"Cache-Control": f"{scope}, no-cache", "ETag": etag}


def _revocation_text(row: RevocationInForce | None) -> str:
    if row is None:
        return ""
    return f"{row.revoked_at.isoformat()}|{row.reason}"


@router.get("/verify")
def verify_form(request: Request, number: str = "") -> Response:
    """A field for a certificate number (for someone holding paper without a QR reader)."""
    number = number.strip()
    if number:
        return RedirectResponse(f"/verify/{number}", status_code=303)
    return portal_of(request).page(request, "verify_start.html")


@router.get("/verify/{number}.json")
def credential_json(request: Request, number: str) -> Response:
    """The credential as issued: both proofs, to check offline (`examflow certificates
    verify` or any Ed25519 and RFC 8785 implementation)."""
    verdicts = _limited(request)
    with portal_of(request).db() as session:
        verdict = verdicts.get(session, number)
    if verdict is None:
        return Response(
            json.dumps({"error": "unknown certificate", "number": number}),
            status_code=404,
            media_type="application/json",
        )
    if (not_modified := _cached(request, verdict.etag, private=False)) is not None:
        return not_modified
    return Response(
        verdict.body,
        media_type="application/json",
        headers=_cache_headers(verdict.etag, private=False),
    )


def _page(
    request: Request,
    number: str,
    verdict: Verdict | None,
    revocation: RevocationInForce | None,
    holder: str = "",
    status_code: int = 200,
) -> Response:
    portal = portal_of(request)
    token = anonymous_csrf(request)
    etag = _etag(number, verdict.etag if verdict else "", _revocation_text(revocation), token)
    if not holder and (not_modified := _cached(request, etag, private=True)) is not None:
        return not_modified
    status_code = status_code if verdict is not None else 404
    context = {
        "number": number,
        "view": _view(verdict, revocation) if verdict is not None else None,
        "holder": holder,
        "checks_per_hour": HOLDER_CHECKS_PER_HOUR,
        "client_checks_per_hour": HOLDER_CHECKS_PER_CLIENT_PER_HOUR,
    }
    if holder or getattr(request.state, "user", None) is not None:
        response: Response = portal.page(request, "verify.html", status_code, **context)
    else:
        html = _state(request).pages.html(
            (number, verdict.etag if verdict else "", _revocation_text(revocation)),
            lambda: portal.render("verify.html", user=None, csrf=CSRF_SLOT, **context),
        )
        response = HTMLResponse(html.replace(CSRF_SLOT, token), status_code=status_code)
    set_anonymous_csrf(response, portal, token)
    if not holder and verdict is not None:
        response.headers.update(_cache_headers(etag, private=True))
    return response


@dataclass(frozen=True)
class CertificateView:
    state: str  # valid | revoked | invalid
    name: str
    certificate: str
    level: str
    sitting: str
    school_name: str
    issuer_name: str
    issued_on: str
    signed_by: str
    revoked_on: str
    reason: str
    superseded: bool
    reissued_on: str  # an earlier version of this number was superseded by this one that day
    problems: tuple[str, ...]


def _view(verdict: Verdict, revocation: RevocationInForce | None) -> CertificateView:
    document = verdict.credential
    subject = document["credentialSubject"]
    issuer, school = document["issuer"]["name"], subject["schoolName"]
    names = {ORGANISER: issuer}
    state = "invalid" if not verdict.ok else "revoked" if revocation is not None else "valid"
    return CertificateView(
        state=state,
        name=subject["name"],
        certificate=subject["certificate"],
        level=subject["level"],
        sitting=subject["sitting"],
        school_name=school,
        issuer_name=issuer,
        issued_on=str(document["validFrom"])[:10],
        signed_by="、".join(names.get(p, school) for p in verdict.signed_by),
        revoked_on=_date(revocation.revoked_at) if revocation else "",
        reason=revocation.reason if revocation else "",
        superseded=bool(revocation and revocation.superseded),
        reissued_on=_date(verdict.reissued_at) if verdict.reissued_at else "",
        problems=verdict.problems,
    )


def _date(moment: datetime) -> str:
    return in_shanghai(moment).strftime("%Y-%m-%d")


@router.get("/verify/{number}")
def verify_page(request: Request, number: str) -> Response:
    verdicts = _limited(request)
    with portal_of(request).db() as session:
        verdict = verdicts.get(session, number)
        revocation = _revocation(session, verdict)
    return _page(request, number, verdict, revocation)


@router.post("/verify/{number}/holder")
def check_holder(
    request: Request,
    number: str,
    id_number: str = Form("", max_length=MAX_ID),
    csrf: str = Form(""),
) -> Response:
    """Whether an ID number is the holder's: checked against the salted digest, not kept."""
    check_anonymous_csrf(request, csrf)
    verdicts = _limited(request)
    portal = portal_of(request)
    with portal.db() as session:
        verdict = verdicts.get(session, number)
        if verdict is None:
            refused = None
        else:
            refused = note_holder_check(
                session,
                number,
                client_address(request),
                portal.now(),
                per_certificate=HOLDER_CHECKS_PER_HOUR,
                per_client=HOLDER_CHECKS_PER_CLIENT_PER_HOUR,
            )
        revocation = _revocation(session, verdict)
    if verdict is None:
        return _page(request, number, None, None)
    if refused is HolderCheckLimit.certificate:
        return _page(request, number, verdict, revocation, "limited", status_code=429)
    if refused is HolderCheckLimit.client:
        return _page(request, number, verdict, revocation, "client_limited", status_code=429)
    matches = id_matches(verdict.credential, id_number)
    return _page(request, number, verdict, revocation, "match" if matches else "mismatch")


@router.get("/keys.json")
def keys_json(request: Request) -> Response:
    """The public keys a credential's proofs and a revocation list are checked against (the
    approved and revoked ones, with when each was revoked), for checking offline:
    `examflow certificates verify FILE --keys …` or any Ed25519 code."""
    _limited(request)
    with portal_of(request).db() as session:
        document = published_keys(verification_keys(session))
    text = json.dumps(document, ensure_ascii=False, sort_keys=True)
    etag = _etag(text)
    if (not_modified := _cached(request, etag, private=False)) is not None:
        return not_modified
    return Response(text, media_type="application/json", headers=_cache_headers(etag, False))


@router.get("/status/{sitting}/revocation")
def status_list(request: Request, sitting: str) -> Response:
    """The sitting's revocation list (W3C Bitstring Status List), as the organiser signed it."""
    _limited(request)
    with portal_of(request).db() as session:
        text = published_status_list(session, sitting)
    if text is None:
        raise HTTPException(status_code=404)
    etag = _etag(text)
    if (not_modified := _cached(request, etag, private=False)) is not None:
        return not_modified
    return Response(text, media_type="application/json", headers=_cache_headers(etag, False))
