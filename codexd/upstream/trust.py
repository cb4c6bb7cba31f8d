"""Which certificate authorities upstream TLS trusts, as curl options.

libcurl builds a certificate store from the CA file when a curl client makes its first connection and keeps
it while the client lives. From the system's bundle (about 145 CAs on Debian 12) that store took 1 MiB of
RSS and 3.7 ms of CPU before the first byte of each new client's first request (pycurl alone, with the TLS
session resumed; 6-7 ms in a full handshake), and codexd makes a new client after each idle spell. A
directory of CAs named by their subject hash (``c_rehash``; Debian, Ubuntu, Alpine, Arch and openSUSE keep
one in ``/etc/ssl/certs`` beside the bundle, made from the same list) is read one CA at a time, only the ones
a server's chain names: 8 KiB and 0.8 ms, as with a file of one CA. So, with no ``ca_bundle`` configured,
codexd trusts that directory where the system has one, and the bundle libcurl finds where it has not.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

import pycurl

from codexd.settings import Settings

SYSTEM_CA_DIR = "/etc/ssl/certs"
_HASH_NAME = re.compile(r"[0-9a-f]{8}\.\d+")
# In libcurl's version string; a TLS library in brackets is built in but not the one in use.
_OPENSSL = re.compile(r"(?<![(\w])(OpenSSL|LibreSSL|BoringSSL|quictls)/")


def trust_options(settings: Settings) -> list[tuple[int, Any]]:
    """The curl options that say which CAs to trust: ``ca_bundle`` and ``ca_dir`` as configured (both may
    be); with neither, the system's hashed directory if there is one; else none (libcurl's own bundle)."""
    ca_dir = settings.ca_dir or ("" if settings.ca_bundle else system_ca_dir())
    options: list[tuple[int, Any]] = []
    if settings.ca_bundle:
        options.append((pycurl.CAINFO, settings.ca_bundle))
    elif ca_dir:
        options.append((pycurl.CAINFO, None))  # not the bundle too: pycurl names one on every handle
    if ca_dir:
        options.append((pycurl.CAPATH, ca_dir))
    return options


def proxy_trust_options(settings: Settings) -> list[tuple[int, Any]]:
    """The same for an ``https://`` proxy's own certificate, as configured; none means libcurl's default."""
    options: list[tuple[int, Any]] = []
    if settings.ca_bundle:
        options.append((pycurl.PROXY_CAINFO, settings.ca_bundle))
    if settings.ca_dir:
        options.append((pycurl.PROXY_CAPATH, settings.ca_dir))
    return options


def trust_problem(settings: Settings) -> tuple[str, str] | None:
    """Why the configured CAs cannot verify any server (every upstream request would fail), and the fix; or
    None."""
    bundle = settings.ca_bundle
    if bundle and not (os.path.isfile(bundle) and os.access(bundle, os.R_OK)):
        return f"upstream.ca_bundle {bundle} is not a readable file", "point it at a PEM file of CAs, or empty it"
    # OpenSSL takes a list of directories, separated as PATH is.
    if settings.ca_dir and not any(is_hashed(d) for d in settings.ca_dir.split(os.pathsep)):
        fix = f"run `openssl rehash {settings.ca_dir}`, or empty it"
        return f"upstream.ca_dir {settings.ca_dir} holds no CA named by its hash", fix
    return None


def trusted(settings: Settings) -> str:
    """Which CAs upstream TLS trusts, in words."""
    named = [f"the CAs in {path}" for path in (settings.ca_bundle, settings.ca_dir) if path]
    if named:
        return " and ".join(named)
    system = system_ca_dir()
    return f"the system's CAs in {system}" if system else "the CA bundle libcurl finds"


@functools.cache
def system_ca_dir() -> str:
    """``SYSTEM_CA_DIR`` if it holds CAs named by hash and libcurl's TLS library is OpenSSL or a fork (other TLS
    libraries take a directory differently, or not at all); else ``""``."""
    return SYSTEM_CA_DIR if _OPENSSL.search(pycurl.version) and is_hashed(SYSTEM_CA_DIR) else ""


def is_hashed(directory: str) -> bool:
    """Whether ``directory`` holds at least one entry named as ``c_rehash`` names CAs (``5ad8a5d6.0``)."""
    try:
        with os.scandir(directory) as entries:
            return any(_HASH_NAME.fullmatch(entry.name) for entry in entries)
    except OSError:
        return False
