"""A school's certificates page: its signing key, made in its browser, and its batch signature.

The private key is made by the browser's WebCrypto (Ed25519, non-extractable) and kept in
its IndexedDB (static/sign.js); only the public key comes here, as a pending key that ops
approve (`examflow keys approve`) after confirming the fingerprint this page shows. Signing:
the page shows the batch in words and its root; the browser asks for the statement, signs
exactly the bytes it is sent, and posts the signature, which is stored only once it verifies
against the school's approved key over the batch as it is now (models.certificates).

Without Ed25519 in the browser (or without JavaScript), a school signs offline with a key file
made by ``examflow keys new --party SCHOOL``: it downloads the signing request (下载签署内容),
signs it with ``examflow sign SITTING --party SCHOOL --key FILE --statement REQUEST -o SIG``,
and uploads the signature file (上传签名), which is checked and stored exactly as a signature
from the browser is.
"""

import base64
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from models.certificates import (
    STATEMENT_LIFETIME,
    CertificateError,
    KeyStatus,
    SigningRefused,
    accept_offline_signature,
    accept_signature,
    batch_signers,
    build_batches,
    enrol_key,
    keys_of,
    masked_ids,
    paper_request_of,
    passing_candidates,
    request_paper,
    signing_request,
    signing_statement,
)
from models.credentials.keys import ORGANISER, fingerprint
from models.credentials.offline import OfflineSignature
from models.credentials.statement import batch_root
from models.domain import StageCode
from models.portal_access import action_window, record_action
from portal.auth import SignedIn, check_csrf, client_address, own_school, signed_in
from portal.context import portal_of
from portal.events import emit_school_acted
from portal.routes.sitting import sitting_or_404

router = APIRouter()

KEY_STATUS_ZH = {
    KeyStatus.approved: "已审核，可以签署",
    KeyStatus.pending: "待审核",
    KeyStatus.revoked: "已吊销",
}
REFUSALS_ZH = {
    "before_publicity": "公示期结束后才能签署。",
    "no_batch": "本校在该考次没有合格考生，无需签署。",
    "unknown_key": "本浏览器中的签名密钥不属于本校，请重新生成签名密钥。",
    "pending_key": "本浏览器的签名密钥尚待审核：请把页面上的密钥指纹告知考务人员，"
    "审核通过后再签署。",
    "revoked_key": "本浏览器的签名密钥已被吊销，请重新生成签名密钥并等待审核。",
    "stale_root": "证书批次已变更（例如复核更改了成绩），原内容不能再签署："
    "请刷新页面，核对后重新签署。",
    "bad_signature": "签名核验未通过，未保存。请刷新页面后重试。",
    "bad_time": "签署内容已过期，请刷新页面后重试。",
}
# The same refusals, worded for a signature file made with a key file (上传签名).
FILE_REFUSALS_ZH = REFUSALS_ZH | {
    "unknown_key": "签名密钥 {key} 不是本校已登记的签名密钥。",
    "pending_key": "签名密钥 {key} 尚待考务人员审核，审核通过后再签署。",
    "revoked_key": "签名密钥 {key} 已被吊销，不能再签署。请联系考务人员。",
    "stale_root": "证书批次已变更（例如复核更改了成绩），该签名文件签署的是旧内容，未保存："
    "请重新下载签署内容，核对后重新签署并上传。",
    "bad_signature": "签名文件核验未通过（不是用所选密钥对下载的签署内容所做的签名），未保存。",
    "bad_time": "签署内容已过期（下载后 {hours} 小时内有效），未保存：请重新下载签署内容，"
    "签署后再上传。",
    "other_party": "该签名文件不是本校的签名（签署方为 {party}），未保存。",
    "other_sitting": "该签名文件属于其他考次（{sitting}），未保存。",
}
MAX_FIELD = 256
MAX_SIGNATURE_FILE = 4096  # a signature file is under 400 bytes
LIFETIME_HOURS = int(STATEMENT_LIFETIME.total_seconds() // 3600)


def _base(school: str, sitting: str) -> str:
    return f"/schools/{school}/sittings/{sitting}/certificates"


@router.get("/schools/{school_code}/sittings/{sitting_code}/certificates")
def certificates_page(
    request: Request, school_code: str, sitting_code: str, user: SignedIn = Depends(signed_in)
) -> Response:
    own_school(user, school_code)
    return _render(request, school_code, sitting_code)


def _render(
    request: Request,
    school_code: str,
    sitting_code: str,
    status_code: int = 200,
    message: str = "",
    error: str = "",
    error_prefix: str = "未签署：",
) -> Response:
    """The certificates page, with the outcome of what the school just did, if anything."""
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        publicity = sitting.spec.window(StageCode.publicity)
        after_publicity = publicity.has_closed(as_of)
        school_keys = keys_of(session, school_code)
        keys = [
            {
                "key_id": k.key_id,
                "fingerprint": fingerprint(k.public_key_b64),
                "status": KEY_STATUS_ZH[KeyStatus(k.status)],
                "enrolled": k.created_at,
            }
            for k in school_keys
        ]
        approved = [k for k in keys if k["status"] == KEY_STATUS_ZH[KeyStatus.approved]]
        batch = (
            build_batches(session, sitting, portal.settings.public_url).get(school_code)
            if after_publicity
            else None
        )
        rows: list[dict[str, Any]] = []
        root, signers = "", set()
        if batch is not None:
            masked = masked_ids(session, sitting.code, [e.ticket_number for e in batch.entries])
            rows = [
                {
                    "name": e.name,
                    "ticket": e.ticket_number,
                    "level": e.level.value,
                    "score": e.score,
                    "masked_id": masked.get(e.ticket_number, ""),
                    "number": e.certificate_number,
                }
                for e in batch.entries
            ]
            root = batch_root(batch)[1].hex()
            signers = batch_signers(session, sitting, batch)
        paper = paper_request_of(session, sitting.code, school_code)
    return portal.page(
        request,
        "certificates.html",
        status_code=status_code,
        sitting=sitting,
        school_code=school_code,
        keys=keys,
        approved_keys=approved,
        after_publicity=after_publicity,
        publicity_closes=publicity.closes_at,
        rows=rows,
        root=root,
        school_signed=school_code in signers,
        organiser_signed=ORGANISER in signers,
        base=_base(school_code, sitting.code),
        lifetime_hours=LIFETIME_HOURS,
        message=message,
        error=error,
        error_prefix=error_prefix,
        paper_requested_at=paper.requested_at if paper is not None else None,
        paper_window=action_window(sitting.spec.window(StageCode.certificates), as_of),
    )


@router.post("/schools/{school_code}/sittings/{sitting_code}/certificates/paper")
def paper(
    request: Request,
    school_code: str,
    sitting_code: str,
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The school asks for paper certificates (``examflow certificates paper``), while the
    certificates window is open and once it has passing candidates; once is enough."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        if not sitting.spec.window(StageCode.certificates).contains(as_of):
            raise HTTPException(status_code=409, detail="当前不在纸质证书的申请时间内")
        if not passing_candidates(session, sitting.code, school_code):
            refusal = "本校在该考次没有合格考生，无需申请纸质证书。"
            return _render(request, school_code, sitting_code, 422, error=refusal, error_prefix="")
        new = request_paper(session, sitting, school_code, as_of)
        if new:
            _audit(session, request, user, sitting.code, as_of, "paper_requested")
    if new:
        stage = StageCode.certificates.value
        emit_school_acted(sitting.code, stage, "paper_requested", school_code)
    message = "已申请纸质证书。" if new else "本校此前已申请纸质证书。"
    return _render(request, school_code, sitting_code, message=message)


@router.post("/schools/{school_code}/sittings/{sitting_code}/certificates/keys")
def enrol(
    request: Request,
    school_code: str,
    sitting_code: str,
    public_key: str = Form("", max_length=MAX_FIELD),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """A public key made in the school's browser: registered pending, answered with its id
    and fingerprint (for the school to read to ops)."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        try:
            kid = enrol_key(session, school_code, public_key.strip(), as_of)
        except (CertificateError, ValueError) as exc:
            return JSONResponse({"ok": False, "message": f"公钥无效：{exc}"}, status_code=422)
        _audit(session, request, user, sitting.code, as_of, "key_enrolled", kid)
    return JSONResponse(
        {
            "ok": True,
            "key_id": kid,
            "fingerprint": fingerprint(public_key.strip()),
            "message": "签名密钥已生成，待考务人员审核。请把密钥指纹告知考务人员。",
        }
    )


def _audit(
    session: Session,
    request: Request,
    user: SignedIn,
    sitting_code: str,
    as_of: datetime,
    action: str,
    detail: str = "",
) -> None:
    """The audit row of what the school did on this page."""
    record_action(
        session,
        sitting_code=sitting_code,
        school_code=user.school_code,
        contact=user.contact,
        action=action,
        as_of=as_of,
        client=client_address(request),
        detail=detail,
    )


def _refused(exc: SigningRefused) -> JSONResponse:
    return JSONResponse(
        {"ok": False, "code": exc.code, "message": REFUSALS_ZH.get(exc.code, str(exc))},
        status_code=409,
    )


@router.get("/schools/{school_code}/sittings/{sitting_code}/certificates/statement")
def statement(
    request: Request,
    school_code: str,
    sitting_code: str,
    key_id: str = "",
    root: str = Query("", max_length=MAX_FIELD),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The exact bytes to sign with ``key_id`` now, and what they are made of; refused when
    the batch's root is no longer ``root``, the one the page showed the school."""
    own_school(user, school_code)
    portal = portal_of(request)
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        try:
            made = signing_statement(
                session,
                sitting,
                school_code,
                key_id,
                portal.now(),
                portal.settings.public_url,
                shown_root=root or None,
            )
        except SigningRefused as exc:
            return _refused(exc)
    return JSONResponse(
        {
            "ok": True,
            "key_id": key_id,
            "created": made.proof_config["created"],
            "digest": made.digest,
            "statement": made.statement,
            "proof_config": made.proof_config,
            "message_b64": base64.b64encode(made.message).decode("ascii"),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/schools/{school_code}/sittings/{sitting_code}/certificates/signature")
def signature(
    request: Request,
    school_code: str,
    sitting_code: str,
    key_id: str = Form("", max_length=MAX_FIELD),
    created: str = Form("", max_length=MAX_FIELD),
    digest: str = Form("", max_length=MAX_FIELD),
    signature_b64: str = Form("", alias="signature", max_length=MAX_FIELD),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        try:
            new = accept_signature(
                session,
                sitting,
                school_code,
                key_id,
                created,
                digest,
                signature_b64,
                as_of,
                portal.settings.public_url,
            )
        except SigningRefused as exc:
            return _refused(exc)
        if new:
            _audit(session, request, user, sitting.code, as_of, "batch_signed", digest[:16])
    if new:
        emit_school_acted(sitting.code, StageCode.certificates.value, "batch_signed", school_code)
    return JSONResponse({"ok": True, "message": "已签署。双方签署后，证书将在下次签发时生成。"})


@router.get("/schools/{school_code}/sittings/{sitting_code}/certificates/statement.json")
def statement_file(
    request: Request,
    school_code: str,
    sitting_code: str,
    key_id: str = Query("", max_length=MAX_FIELD),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The signing request for ``key_id`` as a file (下载签署内容), to sign offline with the
    key file (``examflow sign --statement``); refusals answer with the page, saying why."""
    own_school(user, school_code)
    portal = portal_of(request)
    refusal: SigningRefused | None = None
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        try:
            made = signing_request(
                session, sitting, school_code, key_id, portal.now(), portal.settings.public_url
            )
        except SigningRefused as exc:
            refusal = exc
    if refusal is not None:
        return _render(
            request, school_code, sitting_code, 409, error=_file_refusal(refusal, key_id)
        )
    name = f"{sitting.code}-{school_code}-signing-request.json"
    return Response(
        made.model_dump_json(indent=2) + "\n",
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _file_refusal(exc: SigningRefused, key: str, signature: OfflineSignature | None = None) -> str:
    """Why the download or the upload was refused, in Chinese."""
    text = FILE_REFUSALS_ZH.get(exc.code)
    if text is None:
        return str(exc)
    return text.format(
        hours=LIFETIME_HOURS,
        key=key,
        party=signature.party if signature is not None else "",
        sitting=signature.sitting if signature is not None else "",
    )


def _read_signature(file: UploadFile | None) -> OfflineSignature:
    """The uploaded signature file, or ValueError with what is wrong, in Chinese."""
    data = file.file.read(MAX_SIGNATURE_FILE + 1) if file is not None else b""
    if not data:
        raise ValueError("请选择 examflow sign --statement 生成的签名文件后再上传。")
    if len(data) > MAX_SIGNATURE_FILE:
        raise ValueError(
            f"文件超过 {MAX_SIGNATURE_FILE // 1024} KB，不是 examflow sign 生成的签名文件，未保存。"
        )
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(
            "文件不是 JSON 格式的签名文件，未保存。请上传 examflow sign --statement 生成的"
            "签名文件（不是签署内容文件或密钥文件）。"
        ) from None
    try:
        return OfflineSignature.model_validate(document)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "文件" for e in exc.errors()})
        raise ValueError(
            "文件不是 examflow sign --statement 生成的签名文件（有问题的字段："
            + "、".join(fields)
            + "），未保存。"
        ) from None


@router.post("/schools/{school_code}/sittings/{sitting_code}/certificates/signature-file")
def signature_file(
    request: Request,
    school_code: str,
    sitting_code: str,
    signature_file: UploadFile | None = File(None),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """A signature file made offline (上传签名): stored, audited and evented exactly as a
    signature from the browser (accept_signature), or refused with the page saying why."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    try:
        signature = _read_signature(signature_file)
    except ValueError as exc:
        return _render(request, school_code, sitting_code, 422, error=str(exc))
    portal = portal_of(request)
    as_of = portal.now()
    refusal: SigningRefused | None = None
    new = False
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        try:
            new = accept_offline_signature(
                session, sitting, school_code, signature, as_of, portal.settings.public_url
            )
        except SigningRefused as exc:
            refusal = exc
        else:
            if new:
                detail = f"{signature.digest[:16]} (signature file)"
                _audit(session, request, user, sitting.code, as_of, "batch_signed", detail)
    if refusal is not None:
        error = _file_refusal(refusal, signature.key_id, signature)
        return _render(request, school_code, sitting_code, 409, error=error)
    if new:
        emit_school_acted(sitting.code, StageCode.certificates.value, "batch_signed", school_code)
        message = "签名文件核验通过，已签署。双方签署后，证书将在下次签发时生成。"
    else:
        message = "本校已用该签名签署过当前批次，无需重复上传。"
    return _render(request, school_code, sitting_code, message=message)
