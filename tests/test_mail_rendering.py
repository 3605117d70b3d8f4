"""Rendering messages from templates, building their MIME form, and refusing unsafe headers."""

import datetime as dt
import email
from email.message import EmailMessage
from email.policy import default as default_policy

import jinja2
import pytest
from pydantic import ValidationError

from models.outbox import MessageDraft, OutboxMessageBase, message_domain
from notifications.mime import build_mime, mime_bytes
from notifications.rendering import make_environment, render_message

CONTEXT = {
    "school_name": "北京市第一职业学校",
    "stage_label": "考点设备调试",
    "missing": ["安装考试平台", "完成模拟考试"],
    "deadline": "2024年3月25日 17:00",
}
DAY = dt.date(2024, 3, 20)


def test_selftest_template_renders_subject_text_and_html() -> None:
    message = render_message("_selftest", CONTEXT)

    assert message.subject == "【自检】北京市第一职业学校：考点设备调试提醒"
    assert "- 安装考试平台\n- 完成模拟考试\n" in message.text
    assert "<li>完成模拟考试</li>" in message.html


def test_script_in_a_school_name_is_escaped_in_html_and_kept_in_text() -> None:
    message = render_message("_selftest", {**CONTEXT, "school_name": "<script>alert(1)</script>"})

    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "<script>alert(1)</script>" in message.text


def test_the_subject_is_always_one_line() -> None:
    message = render_message("_selftest", {**CONTEXT, "school_name": "一中\r\nBcc: x@evil.example"})

    assert "\r" not in message.subject and "\n" not in message.subject
    assert message.subject == "【自检】一中 Bcc: x@evil.example：考点设备调试提醒"


def test_a_missing_variable_is_an_error_not_an_empty_string() -> None:
    context = {key: value for key, value in CONTEXT.items() if key != "deadline"}

    with pytest.raises(jinja2.UndefinedError):
        render_message("_selftest", context)


def test_the_environment_is_built_once() -> None:
    assert make_environment() is make_environment()


def draft(**overrides: object) -> MessageDraft:
    values: dict[str, object] = {
        "sitting_code": "2024-1",
        "stage": "materials",
        "checkpoint": "open",
        "day": DAY,
        "recipient_ref": "S0001",
        "to_addr": "北京市第一职业学校 <s0001@school.example.cn>",
        "subject": "请下载准考证",
        "text_body": "正文",
        "html_body": "<p>正文</p>",
    }
    values.update(overrides)
    return MessageDraft.model_validate(values)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "提醒\r\nBcc: victim@example.com"),
        ("subject", "提醒\nX-Injected: 1"),
        ("to_addr", "s0001@school.example.cn\r\nBcc: victim@example.com"),
        ("to_addr", "s0001@school.example.cn\nBcc: victim@example.com"),
        ("cc_addr", "ops@exam.example.cn\r\nBcc: victim@example.com"),
        ("to_addr", "a@school.example.cn, b@school.example.cn"),
        ("to_addr", "undisclosed: a@school.example.cn;"),
        ("to_addr", "not an address"),
        ("to_addr", "@school.example.cn"),
        ("to_addr", "张三@学校.cn"),
        ("attachment_name", "a.ics\r\nX-Injected: 1"),
    ],
)
def test_header_injection_and_malformed_addresses_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=r"CR or LF|address|one|ASCII|group|local part"):
        draft(**{field: value})


def test_well_formed_addresses_pass_and_the_key_is_built() -> None:
    message = draft(cc_addr="ops@localhost")

    assert message.to_addr == "北京市第一职业学校 <s0001@school.example.cn>"
    assert message.key == "2024-1|materials|open|2024-03-20|S0001"


def test_a_key_that_does_not_match_its_parts_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not outbox_key"):
        draft(key="2024-1|materials|open|2024-03-20|S9999")


def test_an_attachment_needs_its_name_and_type() -> None:
    with pytest.raises(ValidationError, match="go together"):
        draft(attachment=b"BEGIN:VCALENDAR")


def test_message_domain_comes_from_the_sender_address() -> None:
    assert message_domain("考试组织方 <noreply@exam.example.cn>") == "exam.example.cn"
    assert message_domain("examflow <examflow@localhost>") == "localhost"
    assert message_domain("nobody") == "examflow"


def parse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_build_mime_makes_a_seven_bit_alternative_message_with_the_rows_message_id() -> None:
    rendered = render_message("_selftest", CONTEXT)
    row = OutboxMessageBase(
        **draft(
            subject=rendered.subject, text_body=rendered.text, html_body=rendered.html
        ).model_dump(),
        message_id="<0123abcd@exam.example.cn>",
        queued_at=dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC),
    )

    message = build_mime(row, "考试组织方 <noreply@exam.example.cn>")
    raw = message.as_bytes()
    parsed = parse(message)

    assert raw.isascii()
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == rendered.subject
    assert parsed["From"].addresses[0].display_name == "考试组织方"
    assert parsed["Message-ID"] == "<0123abcd@exam.example.cn>"
    assert parsed["Date"].datetime == row.queued_at  # when queued, shown in +0800
    assert parsed["Date"].endswith("+0800")
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    # text parts travel in canonical form, CRLF line ends
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html


def test_long_chinese_headers_fold_under_78_columns_and_decode_exactly() -> None:
    subject = (
        "【重要提醒】" + "请各考点于截止时间前完成考试平台安装与模拟考试，" * 4 + "逾期视为放弃。"
    )
    school = "北京市第一职业技术学校（朝阳校区）信息工程系考务办公室"
    row = OutboxMessageBase(
        **draft(
            subject=subject,
            to_addr=f"{school} <s0001@school.example.cn>",
            cc_addr='"Ops, Exam Team" <ops@exam.example.cn>',
            attachment=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
            attachment_name="考试日程 2024.ics",
            attachment_type="text/calendar",
        ).model_dump(),
        message_id="<0123abcd@exam.example.cn>",
        queued_at=dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC),
    )

    raw = mime_bytes(row, "考试组织方 <noreply@exam.example.cn>")
    parsed = email.message_from_bytes(raw, policy=default_policy)

    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends only
    assert parsed["Subject"] == subject
    assert parsed["To"].addresses[0].addr_spec == "s0001@school.example.cn"
    # (the stdlib parser puts a space between adjacent encoded words in a display name,
    # which RFC 2047 says to ignore; mail clients do)
    assert parsed["To"].addresses[0].display_name.replace(" ", "") == school
    assert parsed["Cc"].addresses[0].display_name == "Ops, Exam Team"
    assert parsed.get_content_type() == "multipart/mixed"
    [attachment] = parsed.iter_attachments()
    assert attachment.get_filename() == "考试日程 2024.ics"
    assert parsed.defects == [] and all(part.defects == [] for part in parsed.walk())


@pytest.mark.parametrize("subject", ["Plain ASCII notice", "=?utf-8?q?not_an_encoded_word?="])
def test_ascii_subjects_arrive_exactly_as_written(subject: str) -> None:
    row = OutboxMessageBase(
        **draft(subject=subject).model_dump(),
        message_id="<0123abcd@exam.example.cn>",
        queued_at=dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC),
    )

    parsed = email.message_from_bytes(mime_bytes(row, "ops@localhost"), policy=default_policy)

    assert parsed["Subject"] == subject


@pytest.mark.parametrize(
    "name",
    [
        "schedule.ics",
        "考试日程.ics",
        "2024年上半年职业技能等级证书考试考点设备调试与模拟考试日程安排表.ics",
    ],
)
def test_attachment_file_names_survive_any_length(name: str) -> None:
    row = OutboxMessageBase(
        **draft(
            attachment=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
            attachment_name=name,
            attachment_type="text/calendar",
        ).model_dump(),
        message_id="<0123abcd@exam.example.cn>",
        queued_at=dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC),
    )

    raw = mime_bytes(row, "ops@localhost")
    [attachment] = email.message_from_bytes(raw, policy=default_policy).iter_attachments()

    assert attachment.get_filename() == name
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("text/calendar", True),
        ("text/calendar; method=PUBLISH", True),
        ('application/pdf; name="a.pdf"', True),
        ("calendar", False),
        ("text/calendar; method=PUBLISH\r\nBcc: victim@example.com", False),
        ("text/calendar\nX: 1", False),
    ],
)
def test_attachment_types_are_one_well_formed_content_type(content_type: str, ok: bool) -> None:
    def make() -> MessageDraft:
        return draft(attachment=b"x", attachment_name="a.ics", attachment_type=content_type)

    if ok:
        assert make().attachment_type == content_type
    else:
        with pytest.raises(ValidationError):
            make()
