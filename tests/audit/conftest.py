"""Shared fixtures for the audit tests: hand-built `AuditResult`s (no database), and the API
client fixtures of tests/api for the tests that run the audit over a platform's records."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from qinglang.audit.model import (
    AuditResult,
    Chart,
    EvidenceTable,
    Figure,
    Finding,
    Requirement,
    Source,
    Status,
)
from tests.api.conftest import api, app_client  # noqa: F401 - fixtures for tests/audit

CHINESE_PHRASE = "未取得监护人同意"
"""A phrase of `sample_result`'s failing finding, looked for in the rendered PDF's text."""


@pytest.fixture
def sample_result() -> AuditResult:
    """A small audit: one failing, one passing and one not-evidenced finding, a chart, evidence."""
    return build_sample_result()


def build_sample_result() -> AuditResult:
    """`sample_result` as a plain function, for module-scoped fixtures that render it once."""
    requirements = (
        Requirement(
            id="REG-01-under14-guardian-consent",
            area="registration",
            kind="automated",
            text_zh="处理不满十四周岁未成年人个人信息的，应当取得其父母或者其他监护人的同意。",
            text_en="Processing the personal information of a minor under 14 requires the "
            "consent of a parent or other guardian.",
            sources=(
                Source("中华人民共和国个人信息保护法", "第三十一条"),
                Source("未成年人网络保护条例", "第三十五条"),
            ),
            check="under14_consent",
            rule_ids=("cn.registration.under14.consent_required",),
        ),
        Requirement(
            id="CON-02-stranger-contact",
            area="contact",
            kind="automated",
            text_zh="不得向未成年人推送陌生人的私信，除非监护人已同意。",
            text_en="Direct messages from strangers are not delivered to minors unless a "
            "guardian has agreed.",
            sources=(Source("未成年人网络保护条例", "第四十一条", verified=False),),
            check="stranger_contact",
            rule_ids=("cn.contact.stranger_dm.block",),
        ),
        Requirement(
            id="GOV-03-annual-audit",
            area="governance",
            kind="attested",
            text_zh="每年开展一次未成年人个人信息处理合规审计。",
            text_en="A compliance audit of minors' personal information processing is "
            "carried out every year.",
            sources=(Source("未成年人网络保护条例", "第三十七条"),),
        ),
    )
    findings = (
        Finding(
            requirement_id="REG-01-under14-guardian-consent",
            status=Status.FAIL,
            summary_zh="有 12 个不满十四周岁的账户未取得监护人同意即处理了个人信息。",
            summary_en="12 accounts under 14 had personal information processed without "
            "guardian consent.",
            figures=(
                Figure("under14_accounts", 1534, "不满十四周岁账户", "Accounts under 14"),
                Figure("without_consent", 12, "无有效同意", "Without valid consent"),
                Figure(
                    "share_without_consent", 0.78, "无同意比例（%）", "Share without consent (%)"
                ),
            ),
            evidence=("under14_without_consent",),
        ),
        Finding(
            requirement_id="CON-02-stranger-contact",
            status=Status.PASS,
            summary_zh="期间内 311 次陌生人私信尝试均被拦截。",
            summary_en="All 311 stranger DM attempts in the period were blocked.",
            figures=(
                Figure("attempts", 311, "尝试次数", "Attempts"),
                Figure("delivered", 0, "已送达", "Delivered"),
            ),
        ),
        Finding(
            requirement_id="GOV-03-annual-audit",
            status=Status.NOT_EVIDENCED,
            summary_zh="尚未上传审计证明文件。",
            summary_en="No attestation document has been uploaded.",
        ),
    )
    chart = Chart(
        id="contact-outcomes",
        title_zh="陌生人联系尝试结果",
        title_en="Stranger contact attempts by outcome",
        labels=("拦截 blocked", "待审核 held", "送达 delivered"),
        series=(("2026 上半年 H1", (200.0, 9.0, 0.0)), ("2026 下半年 H2", (111.0, 4.0, 0.0))),
    )
    evidence = EvidenceTable(
        name="under14_without_consent",
        title_zh="未取得同意的不满十四周岁账户",
        title_en="Accounts under 14 without consent",
        columns=("account_ref", "registered_on", "categories"),
        rows=tuple(
            (f"acct-{i:04d}", f"2026-0{1 + i % 9}-1{i % 10}", "profile;contacts") for i in range(12)
        ),
        total=12,
    )
    return AuditResult(
        platform_slug="demo-video",
        platform_name="示例短视频平台 Demo Video",
        period="2026",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        as_of=datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
        pack="cn 2026.1",
        engine_version="0.1.0",
        requirements=requirements,
        findings=findings,
        charts=(chart,),
        evidence=(evidence,),
        ledger_head=(48213, "9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6"),
        notes=(
            "条例第四十一条的条款号尚未核实。 Article 41 of the Regulation is not yet verified.",
        ),
    )
