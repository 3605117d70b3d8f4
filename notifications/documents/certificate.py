"""An e-certificate's printable rendering: its facts and a QR code of its verification page."""

from typing import Any

from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]

from notifications.documents.layout import ACCENT, MUTED, Pen, render_pdf

PAGE = landscape(A4)


def verification_url(public_url: str, certificate_number: str) -> str:
    """What the QR code holds: the portal's public verification page of this certificate."""
    return f"{public_url.rstrip('/')}/verify/{certificate_number}"


def certificate_pdf(credential: dict[str, Any], public_url: str) -> bytes:
    """One landscape A4 page; the ID number never appears (only its salted digest exists).
    The QR code opens ``public_url``/verify/<certificate number>."""
    subject = credential["credentialSubject"]
    link = verification_url(public_url, subject["certificateNumber"])

    def draw(pen: Pen) -> None:
        width, height = PAGE
        pen.box(28, 28, width - 56, height - 56, stroke=ACCENT, line_width=2.5)
        pen.box(36, 36, width - 72, height - 72, stroke=ACCENT, line_width=0.8)
        pen.text(
            width / 2,
            height - 110,
            subject["certificate"],
            30,
            align="center",
            bold=True,
            color=ACCENT,
            max_width=width - 160,
        )
        pen.text(width / 2, height - 145, "（电子版证书）", 14, align="center", color=MUTED)
        lines = [
            ("姓名", subject["name"]),
            ("级别", subject["level"]),
            ("考次", subject["sitting"]),
            ("成绩", str(subject["score"])),
            ("准考证号", subject["ticketNumber"]),
            ("证书编号", subject["certificateNumber"]),
            ("院校", subject["schoolName"]),
            ("发证日期", credential["validFrom"][:10]),
        ]
        y = height - 200
        for label, value in lines:
            pen.text(150, y, label, 14, color=MUTED)
            pen.text(250, y, value, 16, bold=label in ("姓名", "证书编号"), max_width=330)
            y -= 30
        pen.qr(link, width - 250, 110, 150)
        pen.text(width - 175, 95, link, 8, align="center", color=MUTED, max_width=200)
        pen.text(
            width / 2,
            60,
            f"{credential['issuer']['name']} 与 {subject['schoolName']} 共同签发",
            11,
            align="center",
            color=MUTED,
            max_width=width - 120,
        )
        pen.canvas.showPage()

    return render_pdf(f"{subject['certificateNumber']} 电子证书", PAGE, draw)
