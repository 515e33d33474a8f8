"""From evidence to findings: each check turns the figures read from qinglang's records into a
finding (pass, fail, not evidenced) with its numbers, its evidence tables and a summary in
Chinese and English. No I/O: ``qinglang.audit.run`` reads the evidence, this module judges it.

A check fails only on facts: a number that must be 0 and is not, a document or record that is
missing where the law asks for it. Where the records hold nothing to judge (no processing, no
rights request in the period) the finding is *not evidenced*, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from qinglang.audit.model import (
    Chart,
    EvidenceTable,
    Figure,
    Finding,
    Requirement,
    Status,
)
from qinglang.audit.replay import Replay
from qinglang.policy import Policy
from qinglang.store.audit import (
    Alerts,
    Contacts,
    Exposure,
    Processing,
    Rights,
    StaffReads,
)


@dataclass(frozen=True, slots=True)
class NoticeState:
    """A current notice and the required elements it lacks."""

    language: str
    audience: str
    version: int
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttestationRef:
    """An uploaded document evidencing an attested requirement."""

    title: str
    owner: str
    document_date: date
    sha256: str


@dataclass(slots=True)
class Evidence:
    """Everything the checks read, gathered by ``qinglang.audit.run``."""

    processing: Processing
    contacts: Contacts
    exposure: Exposure
    retention_overdue: dict[str, int]
    """Category → rows past their retention period at as-of (dry run of the retention job)."""
    retention_rules: dict[str, str]
    rights: Rights
    alerts: Alerts
    staff: StaffReads
    encryption_sampled: int
    encryption_plain: int
    key_configured: bool
    notices: list[NoticeState]
    policy: Policy
    overlay_rules: tuple[str, ...]
    """Rule ids the platform's overlay changes."""
    ledger_entries: int
    ledger_break: str | None
    assessment: tuple[int, datetime, date] | None
    """(version, made at, keep until) of the newest impact assessment by as-of."""
    replay: Replay
    game_sessions: int
    game_unverified: int
    decisions: dict[str, dict[str, int]]
    attestations: Mapping[str, Sequence[AttestationRef]] = field(default_factory=dict)
    attestation_months: int = 12
    as_of: datetime | None = None


Outcome = tuple[Status, str, str, tuple[Figure, ...], tuple[str, ...]]


def _fig(name: str, value: int | float | str | None, zh: str, en: str) -> Figure:
    return Figure(name, value, zh, en)


def _outcome(
    status: Status, zh: str, en: str, figs: tuple[Figure, ...], tables: tuple[str, ...]
) -> Outcome:
    return (status, zh, en, figs, tables)


def _passed(zh: str, en: str, figs: tuple[Figure, ...], tables: tuple[str, ...] = ()) -> Outcome:
    return _outcome(Status.PASS, zh, en, figs, tables)


def _failed(zh: str, en: str, figs: tuple[Figure, ...], tables: tuple[str, ...] = ()) -> Outcome:
    return _outcome(Status.FAIL, zh, en, figs, tables)


def _unevidenced(zh: str, en: str, figs: tuple[Figure, ...]) -> Outcome:
    return _outcome(Status.NOT_EVIDENCED, zh, en, figs, ())


def _pct(part: int, whole: int) -> str:
    return "—" if whole == 0 else f"{100 * part / whole:.1f}%"


class Checks:
    """The checks over one run's evidence; each evidence table is built once."""

    def __init__(self, ev: Evidence) -> None:
        self.ev = ev
        self.tables: dict[str, EvidenceTable] = {}

    def _table(self, table: EvidenceTable) -> str:
        self.tables[table.name] = table
        return table.name

    # ------------------------------------------------------------ consent

    def consent_coverage(self, req: Requirement) -> Outcome:
        """Every child's processing record covered by a valid guardian grant at the time."""
        p = self.ev.processing
        figs = (
            _fig("records", p.records, "期内处理记录", "processing records in the period"),
            _fig("child_records", p.child_records, "儿童个人信息处理记录", "records of children"),
            _fig(
                "covered", p.covered, "处理时有有效监护人同意", "covered by a valid guardian grant"
            ),
            _fig("uncovered", p.child_records - p.covered, "未获有效同意", "without valid consent"),
            _fig("children", len(p.children), "涉及儿童", "children processed"),
            _fig(
                "uncovered_children",
                len(p.uncovered_children),
                "存在未获同意处理的儿童",
                "children with processing not consented",
            ),
        )
        tables = (self._uncovered_table(),) if p.child_records > p.covered else ()
        if p.child_records == 0:
            return _unevidenced(
                "期内没有儿童个人信息的处理记录。",
                "No processing of children's information was recorded in the period.",
                figs,
            )
        if p.covered == p.child_records:
            return _passed(
                f"{p.child_records} 条儿童个人信息处理记录均在处理时有监护人的有效同意。",
                f"All {p.child_records} records of processing children's information were covered "
                "by a valid guardian consent at the time.",
                figs,
                tables,
            )
        n = p.child_records - p.covered
        return _failed(
            f"{n} 条儿童个人信息处理记录（{len(p.uncovered_children)} 名儿童）"
            f"在处理时没有监护人的有效同意（覆盖率 {_pct(p.covered, p.child_records)}）。",
            f"{n} records of processing children's information ({len(p.uncovered_children)} "
            f"children) had no valid guardian consent at the time (coverage "
            f"{_pct(p.covered, p.child_records)}).",
            figs,
            tables,
        )

    def _uncovered_table(self) -> str:
        p = self.ev.processing
        return self._table(
            EvidenceTable(
                "processing_without_consent",
                "未获监护人有效同意的儿童个人信息处理",
                "Processing of children's information without valid guardian consent",
                ("account", "purpose", "category", "at", "consent_then"),
                tuple(p.sample),
                p.child_records - p.covered,
            )
        )

    def consent_acted_on(self, req: Requirement) -> Outcome:
        """No processing on a stale, withdrawn or refused consent."""
        p = self.ev.processing
        acted = {k: p.by_state.get(k, 0) for k in ("stale", "withdrawn", "refused")}
        total = sum(acted.values())
        figs = tuple(
            _fig(k, v, zh, en)
            for (k, v), zh, en in zip(
                acted.items(),
                ("同意已失效（告知变更）后处理", "同意撤回后处理", "拒绝同意后处理"),
                ("after the consent went stale", "after withdrawal", "after refusal"),
                strict=True,
            )
        )
        if p.child_records == 0:
            return _unevidenced(
                "期内没有儿童个人信息的处理记录。",
                "No processing of children's information was recorded in the period.",
                figs,
            )
        if total == 0:
            return _passed(
                "没有在同意失效、撤回或拒绝后继续处理的记录。",
                "No processing on a stale, withdrawn or refused consent.",
                figs,
            )
        return _failed(
            f"{total} 条处理记录发生在同意失效、撤回或拒绝之后"
            f"（失效 {acted['stale']}，撤回 {acted['withdrawn']}，拒绝 {acted['refused']}），"
            "超出监护人同意的目的和范围且未重新取得同意。",
            f"{total} records of processing happened on a consent that was stale "
            f"({acted['stale']}), withdrawn ({acted['withdrawn']}) or refused "
            f"({acted['refused']}): beyond what the guardian agreed, without asking again.",
            figs,
            (self._uncovered_table(),),
        )

    # ------------------------------------------------------------ contact and exposure

    def stranger_contact(self, req: Requirement) -> Outcome:
        """No stranger message delivered to a minor against the pack's rule for their age."""
        c = self.ev.contacts
        logged = sum(c.decisions.values())
        denied = c.decisions.get("deny", 0) + c.decisions.get("needs_guardian", 0)
        figs = (
            _fig(
                "messages_to_minors",
                c.messages_to_minors,
                "发给未成年人的私信",
                "messages to minors",
            ),
            _fig("from_strangers", c.from_strangers, "其中来自非好友", "of them from non-friends"),
            _fig(
                "blocked_attempts",
                c.blocked_attempts,
                "平台拦截的私信尝试",
                "message attempts the platform blocked",
            ),
            _fig(
                "delivered_against_rule",
                c.delivered_against_rule,
                "违反规则送达的陌生人私信",
                "stranger messages delivered against the rule",
            ),
            _fig("senders", len(c.senders), "涉及发送者", "senders"),
            _fig("recipients", len(c.recipients), "涉及未成年人", "minors reached"),
            _fig("decisions_logged", logged, "记录的联系决定（抽样）", "contact decisions logged"),
            _fig("decisions_denied", denied, "其中拒绝或需监护人", "of them denied or guardian"),
            _fig("sample_rate", c.sample_rate, "决定日志抽样率", "decision log sample rate"),
        )
        tables: tuple[str, ...] = ()
        if c.delivered_against_rule:
            tables = (
                self._table(
                    EvidenceTable(
                        "stranger_messages_delivered",
                        "违反规则送达未成年人的陌生人私信",
                        "Stranger messages delivered to minors against the rule",
                        ("sender", "recipient", "at", "rule_id"),
                        tuple(c.sample),
                        c.delivered_against_rule,
                    )
                ),
            )
        if c.messages_to_minors == 0 and logged == 0:
            return _unevidenced(
                "期内没有发给未成年人的私信，也没有记录联系决定。",
                "No message to a minor and no contact decision was recorded in the period.",
                figs,
            )
        if c.delivered_against_rule == 0:
            return _passed(
                f"期内没有违反规则送达的陌生人私信；{denied} 次联系尝试被拒绝或转监护人。",
                f"No stranger message reached a minor against the rule; {denied} contact "
                "attempts were denied or sent to the guardian.",
                figs,
            )
        return _failed(
            f"{c.delivered_against_rule} 条陌生人私信违反规则送达 {len(c.recipients)} 名未成年人，"
            f"来自 {len(c.senders)} 个发送者。",
            f"{c.delivered_against_rule} stranger messages reached {len(c.recipients)} minors "
            f"against the rule, from {len(c.senders)} senders.",
            figs,
            tables,
        )

    def audience_exposure(self, req: Requirement) -> Outcome:
        """No minor's content pushed beyond the consented or flagged audience."""
        e = self.ev.exposure
        figs = (
            _fig(
                "pushed",
                e.pushed,
                "推送的未成年人内容曝光",
                "pushed impressions of minors' content",
            ),
            _fig(
                "beyond",
                e.beyond,
                "超出同意范围的曝光",
                "impressions beyond the consented audience",
            ),
            _fig("owners", len(e.owners), "涉及未成年人", "minors whose content was pushed beyond"),
            *(
                _fig(f"reason_{k}", v, f"原因 {k}", f"reason {k}")
                for k, v in sorted(e.by_reason.items())
            ),
        )
        if e.pushed == 0:
            return _unevidenced(
                "期内没有推送未成年人内容的曝光记录。",
                "No pushed impression of a minor's content was recorded in the period.",
                figs,
            )
        if e.beyond == 0:
            return _passed(
                f"{e.pushed} 次推送曝光均在监护人同意或标记的范围内。",
                f"All {e.pushed} pushed impressions stayed within the consented or flagged "
                "audience.",
                figs,
            )
        table = self._table(
            EvidenceTable(
                "exposure_beyond_consent",
                "超出同意范围推送的未成年人内容",
                "Minors' content pushed beyond the consented audience",
                ("item", "owner", "viewer", "surface", "at", "reason"),
                tuple(e.sample),
                e.beyond,
            )
        )
        return _failed(
            f"{e.beyond} 次曝光把 {len(e.owners)} 名未成年人的内容推送给了同意范围以外的用户。",
            f"{e.beyond} impressions pushed the content of {len(e.owners)} minors beyond the "
            "audience their guardians agreed to.",
            figs,
            (table,),
        )

    # ------------------------------------------------------------ storage and rights

    def retention_overdue(self, req: Requirement) -> Outcome:
        """Nothing kept past its retention period."""
        over = self.ev.retention_overdue
        total = sum(over.values())
        figs = tuple(
            _fig(f"overdue_{k}", v, f"超期 {k}", f"overdue {k}") for k, v in sorted(over.items())
        )
        table = self._table(
            EvidenceTable(
                "retention_overdue",
                "超过保存期限的记录",
                "Records past their retention period",
                ("category", "rule_id", "overdue"),
                tuple((k, self.ev.retention_rules.get(k, ""), v) for k, v in sorted(over.items())),
            )
        )
        if total == 0:
            return _passed(
                "没有超过保存期限的记录。",
                "No record is kept past its retention period.",
                figs,
                (table,),
            )
        return _failed(
            f"{total} 条记录超过保存期限仍未删除。",
            f"{total} records are kept past their retention period.",
            figs,
            (table,),
        )

    def _rights_table(self) -> str:
        r = self.ev.rights
        return self._table(
            EvidenceTable(
                "rights_late",
                "逾期或超期未答复的权利请求",
                "Rights requests answered late or overdue",
                ("request", "kind", "status", "due", "closed"),
                tuple(r.sample),
                r.late + r.open_overdue,
            )
        )

    def rights_on_time(self, req: Requirement) -> Outcome:
        """Rights requests answered by their due date."""
        r = self.ev.rights
        figs = (
            _fig("due", r.due, "期内到期的请求", "requests due in the period"),
            _fig("on_time", r.on_time, "按期答复", "answered on time"),
            _fig("late", r.late, "逾期答复", "answered late"),
            _fig("open_overdue", r.open_overdue, "超期未答复", "overdue, unanswered"),
        )
        if r.due == 0:
            return _unevidenced(
                "期内没有到期的权利请求。", "No rights request fell due in the period.", figs
            )
        bad = r.late + r.open_overdue
        if bad == 0:
            return _passed(
                f"{r.due} 个权利请求均按期答复。",
                f"All {r.due} rights requests were answered on time.",
                figs,
            )
        return _failed(
            f"{bad} 个权利请求逾期（按期率 {_pct(r.on_time, r.due)}）。",
            f"{bad} rights requests were late (on time {_pct(r.on_time, r.due)}).",
            figs,
            (self._rights_table(),),
        )

    def rights_refusal_reasons(self, req: Requirement) -> Outcome:
        """Every refusal gives its reasons."""
        r = self.ev.rights
        figs = (
            _fig("refused", r.refused, "拒绝的请求", "refused requests"),
            _fig("without_reason", r.refused_without_reason, "未说明理由", "without reasons"),
        )
        if r.refused == 0:
            return _unevidenced(
                "期内没有被拒绝的权利请求。", "No rights request was refused in the period.", figs
            )
        if r.refused_without_reason == 0:
            return _passed(
                f"{r.refused} 个拒绝均书面说明了理由。",
                f"All {r.refused} refusals gave their reasons in writing.",
                figs,
            )
        return _failed(
            f"{r.refused_without_reason} 个拒绝没有说明理由。",
            f"{r.refused_without_reason} refusals gave no reasons.",
            figs,
        )

    def alerts_sla(self, req: Requirement) -> Outcome:
        """Alerts acted on within their SLA."""
        a = self.ev.alerts
        figs = (
            _fig("raised", a.raised, "期内产生的预警", "alerts raised"),
            _fig("within_sla", a.within_sla, "时限内处理", "handled within SLA"),
            _fig("late", a.late, "超时处理", "handled late"),
            _fig("open_overdue", a.open_overdue, "超时未处理", "overdue, unhandled"),
        )
        if a.raised == 0:
            return _unevidenced(
                "期内没有风险预警。", "No risk alert was raised in the period.", figs
            )
        bad = a.late + a.open_overdue
        if bad == 0:
            return _passed(
                f"{a.raised} 个预警均在时限内处理。",
                f"All {a.raised} alerts were handled within their SLA.",
                figs,
            )
        table = self._table(
            EvidenceTable(
                "alerts_late",
                "超时处理的预警",
                "Alerts handled late",
                ("alert", "priority", "raised", "due", "first_action"),
                tuple(a.sample),
                bad,
            )
        )
        return _failed(
            f"{bad} 个预警未在时限内处理（{_pct(a.within_sla, a.raised)} 按时）。",
            f"{bad} alerts were not handled within their SLA ({_pct(a.within_sla, a.raised)} "
            "on time).",
            figs,
            (table,),
        )

    def staff_access_logged(self, req: Requirement) -> Outcome:
        """Staff reads of children's data are logged: no alert acted on without a logged read."""
        s = self.ev.staff
        figs = (
            _fig("reads", s.reads, "记录的工作人员查阅", "staff reads logged"),
            _fig("readers", s.readers, "查阅人员", "staff who read"),
            _fig("alerts_acted", s.alerts_acted, "处置的预警", "alerts acted on"),
            _fig(
                "unread", s.alerts_acted_unread, "无查阅记录的处置", "acted on with no logged read"
            ),
        )
        if s.reads == 0 and s.alerts_acted == 0:
            return _unevidenced(
                "期内没有工作人员查阅或处置记录。",
                "No staff read or review action was recorded in the period.",
                figs,
            )
        if s.alerts_acted_unread == 0:
            return _passed(
                f"{s.reads} 次工作人员查阅均已记录；每个被处置的预警都有查阅记录。",
                f"{s.reads} staff reads were logged; every alert acted on has a logged read.",
                figs,
            )
        table = self._table(
            EvidenceTable(
                "alerts_acted_unread",
                "无查阅记录即处置的预警",
                "Alerts acted on with no logged read",
                ("alert", "first_action"),
                tuple(s.sample),
                s.alerts_acted_unread,
            )
        )
        return _failed(
            f"{s.alerts_acted_unread} 个预警被处置，但没有工作人员查阅其证据的记录。",
            f"{s.alerts_acted_unread} alerts were acted on with no logged read of their evidence.",
            figs,
            (table,),
        )

    # ------------------------------------------------------------ configuration

    def encryption_at_rest(self, req: Requirement) -> Outcome:
        """A data key is configured and stored birth dates are ciphertext."""
        e = self.ev
        figs = (
            _fig("key_configured", "yes" if e.key_configured else "no", "数据密钥", "data key"),
            _fig("sampled", e.encryption_sampled, "抽查的出生日期字段", "birth dates sampled raw"),
            _fig("plain", e.encryption_plain, "明文", "readable as plain dates"),
        )
        if not e.key_configured or e.encryption_plain:
            return _failed(
                f"敏感字段未全部加密存储（{e.encryption_plain} 个明文）。",
                f"Sensitive fields are not all encrypted at rest ({e.encryption_plain} plain).",
                figs,
            )
        return _passed(
            f"已配置数据密钥；直接读取数据库抽查的 {e.encryption_sampled} 个出生日期均为密文。",
            f"A data key is configured; all {e.encryption_sampled} birth dates read raw from the "
            "database were ciphertext.",
            figs,
        )

    def notices_complete(self, req: Requirement) -> Outcome:
        """Every current notice has every required element."""
        ns = self.ev.notices
        incomplete = [n for n in ns if n.missing]
        table = self._table(
            EvidenceTable(
                "notices",
                "现行告知书及缺少的要素",
                "Current notices and missing elements",
                ("language", "audience", "version", "missing"),
                tuple((n.language, n.audience, n.version, " ".join(n.missing)) for n in ns),
            )
        )
        figs = (
            _fig("notices", len(ns), "现行告知书", "current notices"),
            _fig("incomplete", len(incomplete), "要素不全", "incomplete"),
        )
        if not ns:
            return _failed("没有发布告知书。", "No notice is published.", figs, (table,))
        if incomplete:
            return _failed(
                f"{len(incomplete)} 份现行告知书缺少法定要素。",
                f"{len(incomplete)} current notices lack required elements.",
                figs,
                (table,),
            )
        return _passed(
            f"{len(ns)} 份现行告知书包含全部法定要素。",
            f"All {len(ns)} current notices contain every required element.",
            figs,
            (table,),
        )

    def policy_floors(self, req: Requirement) -> Outcome:
        """The rules that implement the requirement are in force."""
        policy = self.ev.policy
        known: dict[str, Any] = {
            **policy.rules,
            **{f"bandset.{b}": "; ".join(x.id for x in policy.bands(b)) for b in policy.bandsets},
        }
        missing = [r for r in req.rule_ids if r not in known]
        changed = [r for r in req.rule_ids if r in self.ev.overlay_rules]
        figs = tuple(
            _fig(
                rid,
                "missing" if rid not in known else str(getattr(known[rid], "value", known[rid])),
                "生效值",
                "value in force",
            )
            for rid in req.rule_ids
        )
        if missing or not req.rule_ids:
            return _failed(
                f"规则包缺少实施该要求的规则：{', '.join(missing) or '无'}。",
                "The pack in force lacks the rules that implement it: "
                f"{', '.join(missing) or '-'}.",
                figs,
            )
        note_zh = f"（平台配置调整了 {', '.join(changed)}，未放宽法定底线）" if changed else ""
        note_en = f" (the platform's overlay changes {', '.join(changed)}, within the floors)"
        return _passed(
            f"生效规则包 {policy.meta.id} {policy.meta.version} 实施该要求{note_zh}。",
            f"The pack in force, {policy.meta.id} {policy.meta.version}, implements it"
            f"{note_en if changed else ''}.",
            figs,
        )

    # ------------------------------------------------------------ governance

    def ledger_intact(self, req: Requirement) -> Outcome:
        """The hash-chained ledger verifies from its first entry to its head."""
        e = self.ev
        figs = (
            _fig("entries", e.ledger_entries, "账本条目", "ledger entries"),
            _fig("break", e.ledger_break or "none", "断点", "break"),
        )
        if e.ledger_entries == 0:
            return _unevidenced("账本为空。", "The ledger is empty.", figs)
        if e.ledger_break:
            return _failed(
                f"账本校验失败：{e.ledger_break}",
                f"The ledger does not verify: {e.ledger_break}",
                figs,
            )
        return _passed(
            f"账本 {e.ledger_entries} 个条目的哈希链校验通过。",
            f"The hash chain of {e.ledger_entries} ledger entries verifies.",
            figs,
        )

    def impact_assessment_current(self, req: Requirement) -> Outcome:
        """An impact assessment exists and is still within its keeping period."""
        a = self.ev.assessment
        if a is None:
            return _failed(
                "没有个人信息保护影响评估。",
                "No personal-information impact assessment exists.",
                (),
            )
        version, made, keep = a
        figs = (
            _fig("version", version, "版本", "version"),
            _fig("made", made.date().isoformat(), "评估日期", "made on"),
            _fig("keep_until", keep.isoformat(), "保存至", "kept until"),
        )
        as_of = self.ev.as_of
        if as_of is not None and keep < as_of.date():
            return _failed(
                f"最新的影响评估（第 {version} 版）已超过保存期限。",
                f"The newest impact assessment (version {version}) is past its keeping period.",
                figs,
            )
        return _passed(
            f"影响评估第 {version} 版（{made.date().isoformat()}）保存至 {keep.isoformat()}。",
            f"Impact assessment version {version} ({made.date().isoformat()}) is kept until "
            f"{keep.isoformat()}.",
            figs,
        )

    def decision_replay(self, req: Requirement) -> Outcome:
        """A sample of logged decisions decided again gives the same outcomes."""
        r = self.ev.replay
        logged = sum(sum(v.values()) for v in self.ev.decisions.values())
        figs = (
            _fig("logged", logged, "期内记录的决定", "decisions logged in the period"),
            _fig("sampled", r.sampled, "重放样本", "replayed"),
            _fig("same", r.same, "结果相同", "same outcome"),
            _fig("explained", r.explained, "因账户变化而不同", "different, account changed since"),
            _fig("unexplained", r.unexplained, "无法解释的不同", "different, unexplained"),
            _fig("not_replayable", r.not_replayable, "无法重放", "not replayable"),
        )
        tables: tuple[str, ...] = ()
        if r.differences:
            tables = (
                self._table(
                    EvidenceTable(
                        "replay_differences",
                        "重放结果不同的决定",
                        "Replayed decisions that differ",
                        ("log_id", "kind", "action", "at", "then", "now", "difference"),
                        tuple(r.differences[:200]),
                        len(r.differences),
                    )
                ),
            )
        if r.sampled == 0:
            return _unevidenced(
                "期内没有可重放的决定记录。",
                "No logged decision with its request was found in the period.",
                figs,
            )
        if r.unexplained:
            return _failed(
                f"{r.sampled} 个重放决定中有 {r.unexplained} 个在事实未变的情况下结果不同。",
                f"{r.unexplained} of {r.sampled} replayed decisions differ on unchanged facts.",
                figs,
                tables,
            )
        return _passed(
            f"{r.sampled} 个重放决定中 {r.same} 个结果相同，{r.explained} 个因账户此后变化而不同。",
            f"{r.same} of {r.sampled} replayed decisions are the same; {r.explained} differ "
            "because an account changed since.",
            figs,
            tables,
        )

    def realname_minors(self, req: Requirement) -> Outcome:
        """Minors' game sessions all follow a real-name verification."""
        e = self.ev
        figs = (
            _fig("sessions", e.game_sessions, "未成年人游戏会话", "minors' game sessions"),
            _fig("unverified", e.game_unverified, "未经实名认证", "not real-name verified"),
        )
        if e.game_sessions == 0:
            return _unevidenced(
                "期内没有未成年人的游戏会话。",
                "No game session of a minor was recorded in the period.",
                figs,
            )
        if e.game_unverified:
            return _failed(
                f"{e.game_unverified} 个未成年人游戏会话未经实名认证。",
                f"{e.game_unverified} minors' game sessions were not real-name verified.",
                figs,
            )
        return _passed(
            f"{e.game_sessions} 个未成年人游戏会话均经实名认证。",
            f"All {e.game_sessions} minors' game sessions were real-name verified.",
            figs,
        )

    # ------------------------------------------------------------ attested

    def attested(self, req: Requirement) -> Outcome:
        """A document dated within the validity window before the period's end."""
        docs = sorted(
            self.ev.attestations.get(req.id, ()), key=lambda d: (d.document_date, d.sha256)
        )
        figs = tuple(
            _fig(
                f"document_{i + 1}",
                f"{d.title} · {d.owner} · {d.document_date.isoformat()} · {d.sha256[:12]}",
                "证明文件",
                "document",
            )
            for i, d in enumerate(docs)
        )
        if not docs:
            return _unevidenced(
                f"没有上传证明文件（{self.ev.attestation_months} 个月内）。",
                f"No document was uploaded (dated within {self.ev.attestation_months} months).",
                figs,
            )
        return _passed(
            f"{len(docs)} 份证明文件，最新日期 {docs[-1].document_date.isoformat()}。",
            f"{len(docs)} documents, the latest dated {docs[-1].document_date.isoformat()}.",
            figs,
        )


def evaluate(
    catalogue: Sequence[Requirement], ev: Evidence
) -> tuple[tuple[Finding, ...], tuple[EvidenceTable, ...]]:
    """Every requirement's finding, and the evidence tables behind them (sorted by name)."""
    checks = Checks(ev)
    findings: list[Finding] = []
    for req in catalogue:
        fn: Callable[[Requirement], Outcome] = (
            checks.attested if req.check is None else getattr(checks, req.check)
        )
        status, zh, en, figs, tables = fn(req)
        findings.append(Finding(req.id, status, zh, en, figs, tables))
    return tuple(findings), tuple(checks.tables[k] for k in sorted(checks.tables))


def charts(ev: Evidence) -> tuple[Chart, ...]:
    """The report's charts: consent coverage per category, contact and exposure, decisions."""
    p = ev.processing
    cats = sorted(p.per_category)
    out: list[Chart] = []
    if cats:
        out.append(
            Chart(
                "consent_by_category",
                "儿童个人信息处理记录：按类别的同意覆盖",
                "Processing of children's information: consent coverage by category",
                tuple(cats),
                (
                    ("covered / 有效同意", tuple(float(p.per_category[c][1]) for c in cats)),
                    (
                        "not covered / 未获同意",
                        tuple(float(p.per_category[c][0] - p.per_category[c][1]) for c in cats),
                    ),
                ),
            )
        )
    kinds = sorted(ev.decisions)
    if kinds:
        outcomes = sorted({o for v in ev.decisions.values() for o in v})
        out.append(
            Chart(
                "decisions_by_kind",
                "记录的决定：按类型和结果",
                "Logged decisions by kind and outcome",
                tuple(kinds),
                tuple(
                    (o, tuple(float(ev.decisions[k].get(o, 0)) for k in kinds)) for o in outcomes
                ),
            )
        )
    c, e = ev.contacts, ev.exposure
    out.append(
        Chart(
            "minors_contact_exposure",
            "未成年人：私信与推送曝光",
            "Minors: messages and pushed impressions",
            ("messages / 私信", "pushed / 推送"),
            (
                (
                    "within rules / 合规",
                    (
                        float(c.messages_to_minors - c.delivered_against_rule),
                        float(e.pushed - e.beyond),
                    ),
                ),
                ("against rules / 违规", (float(c.delivered_against_rule), float(e.beyond))),
            ),
        )
    )
    return tuple(out)
