"""Documents a review produces: a bilingual report to the police or a regulator, and the message
recorded for a guardian.

The report carries the minimised evidence (signals with excerpts, the event timeline, the minors'
account ids and ages) and the measures taken; it never carries whole messages, names, birth
dates or identity numbers. The platform keeps the original records for the authority to request
(未成年人保护法 art. 80).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from qinglang.review.actions import AUTHORITIES

MEDIA_TYPE: Final = "text/markdown; charset=utf-8"
_KIND_ZH: Final = {
    "follow": "关注",
    "unfollow": "取消关注",
    "message": "私信",
    "impression": "内容曝光",
    "gift": "礼物/打赏",
    "profile_view": "访问主页",
    "block": "屏蔽",
    "report": "举报",
}
_ACTION_ZH: Final = {
    "auto_restrict": "自动限制联系未成年人（待审核）",
    "restrict": "限制联系未成年人",
    "suspend": "暂停账号",
    "remove_content": "删除内容",
    "notify_guardians": "通知监护人",
    "report": "向主管机关报告",
    "assign": "分派审核",
    "lift": "解除限制",
}


def _cell(value: Any) -> str:
    """A value safe inside a Markdown table cell."""
    if value is None:
        return "—"
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|") or "—"


def _details(entry: Mapping[str, Any]) -> str:
    parts = []
    if "surface" in entry:
        parts.append(f"surface={entry['surface']}")
    if "item" in entry:
        parts.append(f"item={entry['item']}")
    if "amount_fen" in entry:
        parts.append(f"amount={entry['amount_fen']} fen")
    if "text_chars" in entry:
        parts.append(f"text: {entry['text_chars']} chars / 字")
    return ", ".join(parts)


def authority_report(
    evidence: Mapping[str, Any],
    *,
    platform: str,
    authority: str,
    reviewer: str,
    generated_at: datetime,
    reference: str | None = None,
    measures: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The Markdown report of an alert to `authority` (police or cac), in Chinese and English."""
    if authority not in AUTHORITIES:
        raise ValueError(f"authority must be one of {', '.join(AUTHORITIES)}, got {authority!r}")
    zh, en = AUTHORITIES[authority]
    sender = evidence["sender"]
    lines = [
        "# 涉未成年人违法犯罪线索报告 / Report of suspected harm to minors",
        "",
        f"- 报送机关 / To: {zh} / {en}",
        f"- 平台 / Platform: {_cell(platform)}",
        f"- 报告编号 / Reference: {_cell(reference)}",
        f"- 预警编号 / Alert: {_cell(evidence['alert'])}",
        f"- 生成时间 / Generated (UTC): {generated_at.isoformat()}",
        f"- 审核人 / Reviewer: {_cell(reviewer)}",
        "- 依据 / Legal basis: 《中华人民共和国未成年人保护法》第八十条 / Law on the Protection of "
        "Minors, art. 80 (网络服务提供者发现用户利用其网络服务对未成年人实施违法犯罪行为的，"
        "应当立即停止向该用户提供网络服务，保存有关记录，并向公安机关报告 / a provider that "
        "discovers a "
        "user committing offences against minors through its service stops serving that user, "
        "keeps the records and reports to the police)",
        "",
        "## 1. 涉嫌账号 / Account concerned",
        "",
        "| 平台账号 / Account | 年龄 / Age | 风险分 / Score | 级别 / Level | 规则 / Rule |",
        "|---|---|---|---|---|",
        f"| {_cell(sender['account'])} | {_cell(sender.get('age'))} | {evidence['score']} "
        f"| {_cell(evidence['level'])} | {_cell(evidence.get('rule_id'))} |",
        "",
        "## 2. 涉及的未成年人 / Minors involved",
        "",
        "仅列平台账号与年龄；身份信息由平台依法提供。/ Platform account ids and ages only; the "
        "platform provides identities on lawful request.",
        "",
        "| 平台账号 / Account | 年龄 / Age |",
        "|---|---|",
    ]
    minors = evidence.get("minors") or []
    lines += [f"| {_cell(m['account'])} | {_cell(m.get('age'))} |" for m in minors]
    if not minors:
        lines.append("| — | — |")
    lines += ["", "## 3. 风险信号 / Signals", ""]
    for s in evidence.get("signals") or []:
        lines.append(
            f"- **{_cell(s['name'])}** ({s['weight']}): {_cell(s['explanation_zh'])} / "
            f"{_cell(s['explanation_en'])}"
        )
        if s.get("excerpt"):
            lines.append(f"  - 摘录 / Excerpt: 「{_cell(s['excerpt'])}」")
        if s.get("event_ids"):
            lines.append(f"  - 事件 / Events: {', '.join(_cell(i) for i in s['event_ids'])}")
    lines += [
        "",
        "## 4. 事件时间线 / Event timeline (UTC)",
        "",
        "| 时间 / Time | 事件 / Event | 类型 / Kind | 发起 / From | 对象 / To | 详情 / Details |",
        "|---|---|---|---|---|---|",
    ]
    for e in evidence.get("timeline") or []:
        kind = e["kind"]
        lines.append(
            f"| {_cell(e['at'])} | {_cell(e['event_id'])} | {_KIND_ZH.get(kind, kind)} / {kind} "
            f"| {_cell(e['actor'])} | {_cell(e.get('counterpart'))} | {_cell(_details(e))} |"
        )
    if evidence.get("timeline_truncated"):
        lines.append("")
        lines.append("时间线仅列最近的事件。/ The timeline lists the latest events only.")
    lines += ["", "## 5. 已采取的措施 / Measures taken", ""]
    for m in measures:
        kind = str(m["kind"])
        lines.append(
            f"- {_cell(m['at'])}: {_ACTION_ZH.get(kind, kind)} / {kind} ({_cell(m['actor'])})"
        )
    if not measures:
        lines.append("- —")
    lines += [
        "",
        "## 6. 记录保存 / Records kept",
        "",
        "本报告为最小化摘录：不含完整消息、姓名、出生日期或身份证件号码。平台已保存上述事件的原始记录，"
        "可依法提供。/ This report is minimised: it carries no whole messages, names, birth dates "
        "or identity numbers. The platform keeps the original records of the events above and "
        "provides them on lawful request.",
        "",
    ]
    return "\n".join(lines)


def guardian_message(child: str, restricted: bool) -> tuple[str, str]:
    """The notification recorded for a guardian of `child` (Chinese, English): no evidence."""
    zh = (
        f"您好：平台安全系统发现，有用户可能对您监护的未成年人（账号 {child}）存在不当接触的风险。"
        + ("我们已限制该用户联系未成年人。" if restricted else "我们正在进一步核查。")
        + "请与孩子沟通，提醒其不要向陌生人透露年龄、学校、住址、照片等个人信息，"
        "遇到要求见面或索要隐私的情况及时告诉家长。如发现孩子可能受到侵害，请立即报警（110）。"
    )
    en = (
        f"Our safety system found that a user may have sought inappropriate contact with the "
        f"minor in your care (account {child}). "
        + (
            "We have restricted that user from contacting minors. "
            if restricted
            else "We are looking into it further. "
        )
        + "Please talk with your child: they should not share their age, school, address or "
        "photos with strangers, and should tell you if anyone asks to meet or for private "
        "information. If you believe your child has been harmed, call the police (110) at once."
    )
    return zh, en
