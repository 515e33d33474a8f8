"""Helpers for consent tests: notices, verified guardians and consent decisions over the API."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

ELEMENTS = {
    "purpose_method_scope": "我们为提供短视频服务收集和使用以下信息",
    "storage_location": "中华人民共和国境内",
    "retention_period": "账号存续期间；注销后15日内删除",
    "expiry_handling": "到期删除或匿名化",
    "security_measures": "加密存储，最小授权访问",
    "refusal_consequences": "拒绝不影响基本功能",
    "complaint_channel": "客服电话 400-000-0000",
    "correction_deletion": "在监护人页面更正或删除",
    "necessity_and_effect": "为展示孩子的作品所必需；可能被他人看到",
}
PUBLISH = {
    "purpose": "publish_content",
    "categories": ["child_content"],
    "method": "孩子上传的视频",
    "scope": "展示给关注孩子的用户",
    "audience": "followers",
}
RECOMMEND = {
    "purpose": "recommend_content",
    "categories": ["child_content"],
    "method": "推荐算法",
    "scope": "推荐给其他用户",
    "audience": "public",
}
LOCATION = {
    "purpose": "nearby",
    "categories": ["location"],
    "method": "设备定位",
    "scope": "附近的人",
}


def ric(birth: date, region: str = "110101", seq: int = 123) -> str:
    """A well-formed 18-digit resident identity number."""
    head = f"{region}{birth:%Y%m%d}{seq:03d}"
    return head + "10X98765432"[sum(int(d) * w for d, w in zip(head, WEIGHTS, strict=True)) % 11]


def notice_body(*items: dict[str, Any], elements: dict[str, str] | None = None) -> dict[str, Any]:
    """A child notice document with these items."""
    return {"title": "儿童个人信息保护规则", "elements": elements or ELEMENTS, "items": list(items)}


def publish(api: TestClient, *items: dict[str, Any], language: str = "zh") -> dict[str, Any]:
    """Publish a child notice; return the response body."""
    r = api.post(
        "/v1/notices",
        json={
            "language": language,
            "audience": "child",
            "published_by": "dpo",
            "body": notice_body(*items),
        },
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def link(api: TestClient, guardian: str, child: str) -> None:
    """Create a guardian verified by identity number and link them to the child."""
    assert api.put(f"/v1/guardians/{guardian}", json={"display_name": "王女士"}).status_code == 200
    r = api.post(
        f"/v1/guardians/{guardian}/children",
        json={
            "account": child,
            "method": "id_number_realname",
            "verified_by": "kyc-desk",
            "claims": {"id_number": ric(date(1985, 5, 17))},
        },
    )
    assert r.status_code == 201, r.text


def consent(
    api: TestClient,
    child: str,
    purpose: str,
    decision: str,
    version: int,
    guardian: str = "mum",
    category: str = "child_content",
    **extra: Any,
) -> Any:
    """Send one consent decision; return the raw response."""
    body = {
        "account": child,
        "purpose": purpose,
        "category": category,
        "decision": decision,
        "notice": {"language": "zh", "audience": "child", "version": version},
        "given_by": "guardian",
        "guardian": guardian,
        **extra,
    }
    return api.post("/v1/consents", json=body)
