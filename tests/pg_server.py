"""A throwaway PostgreSQL server on loopback for tests: initdb into a temp dir, start, stop.

Used by the pytest fixtures (one server per test session when none is given) and by `.ci/run`
(`python -m tests.pg_server start DIR` prints the URL; `stop DIR` removes it). As root, the server
runs as the `postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

URL_FILE = "url"


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: $PG_BINDIR, PATH, or the newest Debian install."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def start(base: Path | None = None) -> tuple[str, Path]:
    """Initialise and start a server in `base` (a new temp folder by default); return its URL and folder.

    As root, the server runs as `postgres`: `base`'s parent folders must let that user through.
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
    base = Path(tempfile.mkdtemp(prefix="wb-pg-")) if base is None else base
    base.mkdir(parents=True, exist_ok=True)
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        server_user = pwd.getpwnam("postgres")
        for path in (base, sockets):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                    "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    port = _free_port()
    # Durability settings off: the server lives for one test session.
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=300")
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                    str(base / "server.log"), "-w", "start"]), check=True, capture_output=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    (base / URL_FILE).write_text(url)
    return url, base


def stop(base: Path) -> None:
    """Stop the server started in `base` and delete its folder."""
    bindir = find_bindir()
    if bindir is not None and (base / "data").exists():
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate",
                                        "stop"]), capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.action == "start":
        url, _base = start(args.folder)
        print(url)
    else:
        stop(args.folder)


if __name__ == "__main__":
    sys.exit(main())
