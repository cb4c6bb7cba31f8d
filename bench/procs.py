"""The processes under test: TLS files, the fake backend and codexd as subprocesses, /proc readings."""

from __future__ import annotations

import http.client
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.tokens import ACCOUNT_ID, auth_document, write_auth
from tests.processes import environ_of

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raise RLIMIT_NOFILE (children inherit it, as codexd's systemd unit would set it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_cpus(own: list[int], others: list[int]) -> dict[str, list[int]]:
    """Give the processes in ``own`` (codexd, the stand-in proxies) the last CPU this process may use and those in
    ``others`` (the fake, the load generator) the rest: codexd then runs on one core of its own and the fake's
    work does not compete with it, as the real backend's does not; the CPUs of each side."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise RuntimeError(f"--pin needs at least two CPUs; this process may use {cpus}")
    mine, theirs = {cpus[-1]}, set(cpus[:-1])
    for pid in own:
        os.sched_setaffinity(pid, mine)
    for pid in others:
        os.sched_setaffinity(pid, theirs)
    return {"codexd": sorted(mine), "others": sorted(theirs)}


def free_port() -> int:
    """An unused loopback port (closed again; a tiny race is acceptable here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def allocator_of(pid: int) -> str:
    """The allocator ``pid`` runs Python's objects on: its ``PYTHONMALLOC`` (``codexd serve`` sets ``malloc``
    on Linux with glibc), or ``pymalloc``, Python's default."""
    return environ_of(pid).get("PYTHONMALLOC") or "pymalloc"


def start_fake(cert: Path, key: Path, http2: bool = False) -> tuple[subprocess.Popen[str], int]:
    """The fake backend process (HTTP/2 when ``http2``) and its port."""
    return start_printing_port(["bench.fake", "--cert", str(cert), "--key", str(key), *(["--http2"] if http2 else [])])


def start_printing_port(module_args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """``python -m`` a module that prints its port on stdout once it listens (``env`` added to the
    environment); the process and the port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *module_args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        proc.kill()
        raise RuntimeError(f"{module_args[0]} did not start")
    return proc, int(line)


@dataclass
class Codexd:
    """A running codexd subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    startup_s: float
    access_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SYSTEM_CAS = Path("/etc/ssl/certs")


def system_trust(folder: Path, ca: Path, kind: str) -> Path:
    """The fake's CA among a copy of the system's CAs, as a real install verifies the backend against them:
    ``file``, one PEM bundle (what libcurl reads by default, and what codexd trusts where the system has no
    hashed CA directory), or ``dir``, a directory of CAs named by hash (what codexd trusts by default where
    ``/etc/ssl/certs`` is one). Needs ``/etc/ssl/certs`` and the openssl command."""
    pems = sorted(p.resolve() for p in SYSTEM_CAS.glob("*.pem"))
    if not pems:
        raise RuntimeError(f"--system-cas: no CA files (*.pem) in {SYSTEM_CAS}")
    if kind == "file":
        bundle = folder / "system-cas.pem"
        bundle.write_bytes(b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in [*pems, ca]))
        return bundle
    directory = folder / "system-cas"
    directory.mkdir()
    for n, pem in enumerate([*pems, ca]):
        shutil.copy(pem, directory / f"{n:04d}.pem")
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True)
    return directory


def trust_setting(trust: Path) -> tuple[str, str]:
    """codexd's setting and environment variable for the CAs in ``trust`` (a bundle or a hashed directory)."""
    return ("ca_dir", "CODEXD_CA_DIR") if trust.is_dir() else ("ca_bundle", "CODEXD_CA_BUNDLE")


def write_config(folder: Path, fake_port: int, trust: Path, max_clients: int) -> tuple[Path, Path, str]:
    """codexd's TOML config and a CODEX_HOME with a valid login; (config, codex_home, access token). ``trust``
    is the CA file or directory codexd verifies the fake against."""
    home = folder / "codex-home"
    doc = auth_document(expires_in=86400)
    write_auth(home / "auth.json", doc)
    base = f"https://127.0.0.1:{fake_port}"
    config = folder / "codexd.toml"
    config.write_text(
        '[server]\nhost = "127.0.0.1"\n'
        f'[upstream]\nchatgpt_base_url = "{base}/backend-api/codex"\nrefresh_url = "{base}/oauth/token"\n'
        f'{trust_setting(trust)[0]} = "{trust}"\nmax_clients = {max_clients}\nidle_timeout = 60.0\n'
        '[log]\nlevel = "warning"\n'
    )
    return config, home, str(doc["tokens"]["access_token"])


def precompile(tree: Path = REPO) -> None:
    """Compile codexd to bytecode in the checkout ``tree`` (``__pycache__``, ignored by git), as pip does when
    it installs a package. Without it, a run with PYTHONDONTWRITEBYTECODE=1 would compile every module at each
    start: 0.1 s more on a small VM."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "codexd")], check=True)


def start_codexd(
    config: Path, home: Path, token: str, trust: Path, profile: Path | None = None, tree: Path = REPO
) -> Codexd:
    """Start ``python -m codexd serve`` from the checkout ``tree`` (another version of codexd than this one,
    for ``bench.ab``), trusting the CAs in ``trust``, and wait for /health; the start-up time is Popen to first
    200."""
    port = free_port()
    runner = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [sys.executable, *runner, "-m", "codexd", "serve", "--config", str(config), "--port", str(port)]
    # SSL_CERT_FILE and SSL_CERT_DIR (set on many machines) stand in for the file's settings when it has none,
    # and CODEXD_CA_* beat both: only the CAs in ``trust`` count.
    trust_vars = ("SSL_CERT_FILE", "SSL_CERT_DIR", "CODEXD_CA_BUNDLE", "CODEXD_CA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in trust_vars}
    env.update({"CODEX_HOME": str(home), trust_setting(trust)[1]: str(trust), "PYTHONPATH": str(tree)})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env)
    while time.perf_counter() - t0 < 20:
        if proc.poll() is not None:
            raise RuntimeError(f"codexd exited with {proc.returncode} during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return Codexd(proc, port, time.perf_counter() - t0, token)
        except OSError:
            pass
        time.sleep(0.005)
    proc.kill()
    raise RuntimeError("codexd did not answer /health within 20 s")


def command_time(*args: str, repeats: int = 3) -> tuple[float, int]:
    """Median wall time of ``python -m codexd ARGS`` (no ``codexd`` script is installed in the venv), and the
    last run's exit status."""
    times, code = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", "codexd", *args], cwd=REPO, capture_output=True).returncode
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], code


DIRECT_HEADERS = {"ChatGPT-Account-ID": ACCOUNT_ID}
