"""Signed download links for sites: a site's token proves the link was mailed to that site."""

import hashlib
import hmac

from models.facts import SiteFact

KIND_FACTS: dict[str, SiteFact] = {
    "tickets": SiteFact.tickets_downloaded,
    "labels": SiteFact.labels_downloaded,
    "door_signs": SiteFact.door_signs_downloaded,
    "sign_in_sheets": SiteFact.sign_in_sheets_downloaded,
}


def site_token(secret: bytes, sitting_code: str, site_code: str) -> str:
    message = f"materials/{sitting_code}/{site_code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def token_ok(secret: bytes, sitting_code: str, site_code: str, token: str) -> bool:
    return hmac.compare_digest(site_token(secret, sitting_code, site_code), token)


def materials_link(base_url: str, secret: bytes, sitting: str, site: str, kind: str) -> str:
    token = site_token(secret, sitting, site)
    return f"{base_url.rstrip('/')}/materials/{sitting}/{site}/{kind}.pdf?token={token}"
