"""Signed audit bundles: sign, verify, tampering found, and the documented offline steps."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qinglang.audit.bundle import (
    FORMAT,
    BundleError,
    generate_key,
    sign_bundle,
    verify_bundle,
)
from qinglang.audit.report import write_report
from tests.audit.conftest import build_sample_result


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signing key for the module (its public key next to it as .pub)."""
    path = tmp_path_factory.mktemp("keys") / "signing.pem"
    generate_key(path)
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A written report (rendered once for the module); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("report")
    write_report(build_sample_result(), out)
    return out


@pytest.fixture
def bundle(report_dir: Path, key: Path, tmp_path: Path) -> Path:
    """A freshly signed copy of the report."""
    out = tmp_path / "bundle"
    shutil.copytree(report_dir, out)
    sign_bundle(out, key)
    return out


def _problem_paths(bundle: Path, trusted: Path | None = None) -> list[str]:
    report = verify_bundle(bundle, trusted)
    assert not report.ok
    return [p.path for p in report.problems]


def test_generate_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    fp = generate_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = path.with_suffix(".pub")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(fp) == 64
    with pytest.raises(FileExistsError):
        generate_key(path)
    path.unlink()
    with pytest.raises(FileExistsError):  # the .pub alone also blocks
        generate_key(path)


def test_sign_then_verify(bundle: Path, key: Path) -> None:
    manifest = json.loads((bundle / "MANIFEST.json").read_bytes())
    assert manifest["format"] == FORMAT
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths)
    assert "report.pdf" in paths and "evidence/under14_without_consent.csv" in paths
    assert not {"MANIFEST.json", "MANIFEST.sig", "public_key.pem"} & set(paths)
    pdf = (bundle / "report.pdf").read_bytes()
    entry = next(f for f in manifest["files"] if f["path"] == "report.pdf")
    assert entry == {
        "path": "report.pdf",
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "bytes": len(pdf),
    }
    raw = base64.b64decode(manifest["public_key"])
    assert len(raw) == 32 and manifest["key_fingerprint"] == hashlib.sha256(raw).hexdigest()
    assert len((bundle / "MANIFEST.sig").read_bytes()) == 64

    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert report.key_source == "included"
    assert report.files_checked == len(paths)
    trusted = verify_bundle(bundle, key.with_suffix(".pub"))
    assert trusted.ok and trusted.key_source == "trusted"
    assert trusted.key_fingerprint == manifest["key_fingerprint"]


def test_signing_is_deterministic(report_dir: Path, key: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(report_dir, a)
    shutil.copytree(report_dir, b)
    sign_bundle(a, key)
    sign_bundle(b, key)
    for name in ("MANIFEST.json", "MANIFEST.sig", "public_key.pem"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_tampered_pdf_is_named(bundle: Path) -> None:
    path = bundle / "report.pdf"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert _problem_paths(bundle) == ["report.pdf"]


def test_truncated_file_is_named(bundle: Path) -> None:
    path = bundle / "evidence/under14_without_consent.csv"
    path.write_bytes(path.read_bytes()[:-1])
    report = verify_bundle(bundle)
    assert not report.ok
    assert {p.path for p in report.problems} == {"evidence/under14_without_consent.csv"}
    assert any("bytes" in p.message for p in report.problems)


def test_added_and_removed_files_are_named(bundle: Path) -> None:
    (bundle / "evidence" / "extra.csv").write_text("a\n", encoding="utf-8")
    (bundle / "result.json").unlink()
    assert sorted(_problem_paths(bundle)) == ["evidence/extra.csv", "result.json"]


def test_wrong_trusted_key_fails(bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    generate_key(other)
    report = verify_bundle(bundle, other.with_suffix(".pub"))
    assert not report.ok and report.key_source == "trusted"
    assert "MANIFEST.sig" in [p.path for p in report.problems]


def test_swapped_included_key_fails(bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    generate_key(other)
    shutil.copy(other.with_suffix(".pub"), bundle / "public_key.pem")
    assert "MANIFEST.sig" in _problem_paths(bundle)


def test_truncated_signature_fails(bundle: Path) -> None:
    sig = bundle / "MANIFEST.sig"
    sig.write_bytes(sig.read_bytes()[:63])
    report = verify_bundle(bundle)
    assert not report.ok
    assert [str(p) for p in report.problems] == ["MANIFEST.sig: 63 bytes, expected 64"]


def test_edited_manifest_fails(bundle: Path) -> None:
    manifest = bundle / "MANIFEST.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"bytes":', b'"bytes": ', 1))
    assert _problem_paths(bundle) == ["MANIFEST.sig"]


def test_missing_signature_and_key_are_problems(bundle: Path) -> None:
    (bundle / "MANIFEST.sig").unlink()
    (bundle / "public_key.pem").unlink()
    assert sorted(_problem_paths(bundle)) == ["MANIFEST.sig", "public_key.pem"]


def test_missing_or_unreadable_manifest_raises(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        verify_bundle(tmp_path / "nowhere")
    (bundle / "MANIFEST.json").write_bytes(b"not json")
    with pytest.raises(BundleError):
        verify_bundle(bundle)


def test_manifest_paths_cannot_escape(bundle: Path, key: Path, tmp_path: Path) -> None:
    """A (validly signed) manifest naming ../ is a problem, never a read outside the bundle."""
    from cryptography.hazmat.primitives import serialization

    manifest = json.loads((bundle / "MANIFEST.json").read_bytes())
    manifest["files"].append({"path": "../outside", "sha256": "0" * 64, "bytes": 0})
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (bundle / "MANIFEST.json").write_bytes(data)
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    (bundle / "MANIFEST.sig").write_bytes(private.sign(data))  # type: ignore[union-attr,call-arg]
    assert _problem_paths(bundle) == ["../outside"]


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("openssl not on PATH: the documented offline check cannot be run here")
    return found


def test_openssl_verifies_the_signature(bundle: Path) -> None:
    """The module docstring's command, exactly, on a signed bundle; and it rejects tampering."""
    cmd = [
        _openssl(), "pkeyutl", "-verify", "-pubin", "-inkey", "public_key.pem", "-rawin",
        "-in", "MANIFEST.json", "-sigfile", "MANIFEST.sig",
    ]  # fmt: skip
    ok = subprocess.run(cmd, cwd=bundle, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Signature Verified Successfully" in ok.stdout
    sig = bytearray((bundle / "MANIFEST.sig").read_bytes())
    sig[0] ^= 0x80
    (bundle / "MANIFEST.sig").write_bytes(bytes(sig))
    bad = subprocess.run(cmd, cwd=bundle, capture_output=True, text=True, check=False)
    assert bad.returncode != 0


def test_openssl_fingerprint_matches(bundle: Path) -> None:
    _openssl()
    out = subprocess.run(
        "openssl pkey -pubin -in public_key.pem -outform DER | tail -c 32 | sha256sum",
        shell=True, cwd=bundle, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    manifest = json.loads((bundle / "MANIFEST.json").read_bytes())
    assert out.split()[0] == manifest["key_fingerprint"]


def test_documented_hash_checks(bundle: Path) -> None:
    """The docstring's jq + sha256sum and python3 steps pass, and catch a changed file."""
    if shutil.which("jq") is None or shutil.which("sha256sum") is None:
        pytest.skip("jq or sha256sum not on PATH")
    jq = """jq -r '.files[] | "\\(.sha256)  \\(.path)"' MANIFEST.json | sha256sum -c -"""
    py = "\n".join(
        [
            "import hashlib, json",
            'for f in json.load(open("MANIFEST.json"))["files"]:',
            '    ok = hashlib.sha256(open(f["path"], "rb").read()).hexdigest() == f["sha256"]',
            '    print(f["path"], "OK" if ok else "FAILED")',
        ]
    )
    added = (
        "find . -type f ! -path ./MANIFEST.json ! -path ./MANIFEST.sig ! -path ./public_key.pem"
        " | sed 's|^\\./||' | sort | comm -23 - <(jq -r '.files[].path' MANIFEST.json | sort)"
    )
    run = {"cwd": bundle, "capture_output": True, "text": True, "check": False}
    assert subprocess.run(jq, shell=True, **run).returncode == 0  # type: ignore[call-overload]
    out = subprocess.run(["python3", "-c", py], **run).stdout  # type: ignore[call-overload]
    assert "FAILED" not in out and "report.pdf OK" in out
    assert subprocess.run(["bash", "-c", added], **run).stdout == ""  # type: ignore[call-overload]

    (bundle / "result.json").write_bytes(b"{}")
    (bundle / "sneaky.txt").write_bytes(b"x")
    assert subprocess.run(jq, shell=True, **run).returncode != 0  # type: ignore[call-overload]
    out = subprocess.run(["python3", "-c", py], **run).stdout  # type: ignore[call-overload]
    assert "result.json FAILED" in out
    added_out = subprocess.run(["bash", "-c", added], **run).stdout  # type: ignore[call-overload]
    assert added_out.split() == ["sneaky.txt"]


_NAMES = st.text(alphabet="abcdefghij_-.0123456789", min_size=1, max_size=8).filter(
    lambda s: s not in {".", ".."}
)
_FILESETS = st.dictionaries(
    st.lists(_NAMES, min_size=1, max_size=3).map(tuple),
    st.binary(min_size=1, max_size=64),
    min_size=1,
    max_size=6,
).filter(
    # no file may also be a directory of another ("a" and "a/b")
    lambda files: not any(a != b and b[: len(a)] == a for a in files for b in files)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=_FILESETS, data=st.data())
def test_property_any_flipped_byte_is_found(
    key: Path, files: dict[tuple[str, ...], bytes], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for parts, content in files.items():
            path = root.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        sign_bundle(root, key)
        assert verify_bundle(root).ok

        parts = data.draw(st.sampled_from(sorted(files)), label="file")
        target = root.joinpath(*parts)
        flipped = bytearray(target.read_bytes())
        index = data.draw(st.integers(0, len(flipped) - 1), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        flipped[index] ^= 1 << bit
        target.write_bytes(bytes(flipped))
        report = verify_bundle(root)
        assert not report.ok
        assert [p.path for p in report.problems] == ["/".join(parts)]
