"""Store fixtures: a fresh SQLite file, and a fresh database on a real throwaway PostgreSQL server.

A plain module, not a conftest.py (other test folders import their own `conftest` by name); test modules
bind these fixtures with `db_url = pg_fixtures.db_url` etc.

The PostgreSQL server is started once per session from Debian's binaries (/usr/lib/postgresql/*/bin)
on 127.0.0.1, as the `postgres` user when running as root (initdb refuses root), and stopped at the end.
Set NIS2KUBE_SKIP_POSTGRES=1 to skip those tests; otherwise missing binaries are a test failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest

_counter = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """(host, port, user) of a running throwaway PostgreSQL server."""
    if os.environ.get("NIS2KUBE_SKIP_POSTGRES") == "1":
        pytest.skip("NIS2KUBE_SKIP_POSTGRES=1")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.fail("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin/initdb): install Debian's "
                    "`postgresql` package, or set NIS2KUBE_SKIP_POSTGRES=1 to skip the PostgreSQL tests")
    bindir = os.path.dirname(bins[-1])
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    workdir = tempfile.mkdtemp(prefix="nis2kube-pg-")
    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
    data, port = os.path.join(workdir, "data"), _free_port()
    user = "postgres" if as_root else pwd.getpwuid(os.geteuid()).pw_name
    subprocess.run([*prefix, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", user, "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=on"
    start = subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l",
                            os.path.join(workdir, "log"), "-w", "-t", "60", "start"], capture_output=True, text=True)
    if start.returncode:
        log_path = pathlib.Path(workdir, "log")
        log = log_path.read_text() if log_path.exists() else ""
        pytest.fail(f"could not start PostgreSQL: {start.stderr}\n{log}")
    try:
        yield "127.0.0.1", port, user
    finally:
        subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    host, port, user = pg_server
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://{user}@{host}:{port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each store test runs on both backends (parity)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")
