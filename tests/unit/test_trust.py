"""Which CAs upstream TLS trusts: the configured file and directory, else the system's hashed directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pycurl
import pytest

from codexd.settings import Settings
from codexd.upstream import trust


@pytest.fixture
def system_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty directory standing in for ``/etc/ssl/certs``."""
    folder = tmp_path / "certs"
    folder.mkdir()
    monkeypatch.setattr(trust, "SYSTEM_CA_DIR", str(folder))
    trust.system_ca_dir.cache_clear()
    yield folder
    trust.system_ca_dir.cache_clear()


def test_the_systems_directory_is_used_only_when_it_holds_cas_by_hash(system_dir: Path) -> None:
    (system_dir / "ca-certificates.crt").write_text("")
    (system_dir / "Some_Root_CA.pem").write_text("")
    assert trust.trust_options(Settings()) == [], "no hash names: libcurl's own bundle stays in use"
    trust.system_ca_dir.cache_clear()
    (system_dir / "5ad8a5d6.0").symlink_to("Some_Root_CA.pem")
    assert trust.trust_options(Settings()) == [(pycurl.CAINFO, None), (pycurl.CAPATH, str(system_dir))]


def test_a_missing_system_directory_or_another_tls_library_leaves_libcurls_default(
    system_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (system_dir / "5ad8a5d6.0").write_text("")
    for other in ("GnuTLS/3.7.9", "(OpenSSL/3.0.15) GnuTLS/3.7.9"):
        monkeypatch.setattr(trust.pycurl, "version", f"PycURL/7.45.2 libcurl/7.88.1 {other} zlib/1.2.13")
        trust.system_ca_dir.cache_clear()
        assert trust.trust_options(Settings()) == [], other
    monkeypatch.setattr(trust.pycurl, "version", "PycURL/7.45.2 libcurl/8.5.0 (GnuTLS/3.8.3) OpenSSL/3.0.13")
    trust.system_ca_dir.cache_clear()
    assert trust.trust_options(Settings()) == [(pycurl.CAINFO, None), (pycurl.CAPATH, str(system_dir))]
    monkeypatch.undo()
    monkeypatch.setattr(trust, "SYSTEM_CA_DIR", str(system_dir / "absent"))
    trust.system_ca_dir.cache_clear()
    assert trust.trust_options(Settings()) == []


def test_configured_cas_replace_the_systems_directory(system_dir: Path) -> None:
    (system_dir / "5ad8a5d6.0").write_text("")
    assert trust.trust_options(Settings(ca_bundle="/corp.pem")) == [(pycurl.CAINFO, "/corp.pem")]
    assert trust.trust_options(Settings(ca_dir="/corp")) == [(pycurl.CAINFO, None), (pycurl.CAPATH, "/corp")]
    both = Settings(ca_bundle="/corp.pem", ca_dir="/corp")
    assert trust.trust_options(both) == [(pycurl.CAINFO, "/corp.pem"), (pycurl.CAPATH, "/corp")]
    assert trust.proxy_trust_options(both) == [(pycurl.PROXY_CAINFO, "/corp.pem"), (pycurl.PROXY_CAPATH, "/corp")]
    assert trust.proxy_trust_options(Settings()) == [], "an https proxy's certificate: libcurl's default"


def test_what_is_trusted_is_said_in_words(system_dir: Path) -> None:
    assert trust.trusted(Settings()) == "the CA bundle libcurl finds"
    trust.system_ca_dir.cache_clear()
    (system_dir / "5ad8a5d6.0").write_text("")
    assert trust.trusted(Settings()) == f"the system's CAs in {system_dir}"
    both = Settings(ca_bundle="/corp.pem", ca_dir="/corp")
    assert trust.trusted(both) == "the CAs in /corp.pem and the CAs in /corp"
