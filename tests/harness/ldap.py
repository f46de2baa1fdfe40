"""A real LDAP server for the tests: ldaptor's in-memory directory on Twisted, in a subprocess.

Why ldaptor (PyPI, the ``test`` extra) and not an LDAP responder of our own: OpenBao's ldap auth
method (go-ldap) sends what any directory client sends, a simple bind as
``<userattr>=<username>,<userdn>`` and then a subtree search of ``groupdn`` with
``(|(memberUid=U)(member=DN)(uniqueMember=DN))``; ldaptor serves both from an LDIF tree, checks
``userPassword`` on bind (resultCode 49 otherwise) and evaluates the filter itself, so the
test exercises a real bind and a real group lookup rather than answers we scripted. Measured:
the server is up in about 0.5 s (Twisted's import), a login through OpenBao takes ~20 ms.

``ldap_directory`` (session): the server on 127.0.0.1, on a port the OS picked (it listens on
port 0 and reports the port: race-free), stopped at the end of the session. One user, ``app``,
member of the group ``secret-readers``; its password is random per session. The server logs
each request (ldaptor masks bind passwords as ``*****``) so a test can see which binds reached
the directory.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.ports import stop_process

BASE = "dc=secretsync,dc=test"
USERS = f"ou=users,{BASE}"
GROUPS = f"ou=groups,{BASE}"
USER = "app"
GROUP = "secret-readers"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class LdapDirectory:
    """A running directory: where it listens, the one user's password and the request log."""

    url: str
    password: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def user_dn(self) -> str:
        return f"cn={USER},{USERS}"

    def binds(self) -> list[str]:
        """The log lines of the bind requests the directory received (passwords masked)."""
        return self._lines("LDAPBindRequest")

    def responses(self) -> list[str]:
        """The log lines of its bind responses (``resultCode=49``: invalid credentials)."""
        return self._lines("LDAPBindResponse")

    def _lines(self, kind: str) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if kind in line]


def _ldif(password: str) -> str:
    return (f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: secretsync\no: secretsync\n\n"
            f"dn: {USERS}\nobjectClass: organizationalUnit\nou: users\n\n"
            f"dn: cn={USER},{USERS}\nobjectClass: person\ncn: {USER}\nsn: App\nuserPassword: {password}\n\n"
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
            f"dn: cn={GROUP},{GROUPS}\nobjectClass: groupOfNames\ncn: {GROUP}\nmember: cn={USER},{USERS}\n\n")


def _read_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The port the server prints once it listens."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("LISTENING "):
        raise RuntimeError(f"ldaptor server did not start (exit code {proc.poll()})")
    return int(line.split()[1])


@pytest.fixture(scope="session")
def ldap_directory() -> Iterator[LdapDirectory]:
    pytest.importorskip("ldaptor", reason="ldaptor not installed (the test extra brings it)")
    home = Path(tempfile.mkdtemp(prefix="secretsync-ldap-"))
    password = "ldap-" + uuid.uuid4().hex
    (home / "dit.ldif").write_text(_ldif(password))
    log = home / "server.log"
    with log.open("wb") as err:
        # -m from the repository root: run as a file, this folder would shadow top-level modules
        # (``azure``, ``kube``...) for the server's imports.
        proc = subprocess.Popen([sys.executable, "-m", "tests.harness.ldap", str(home / "dit.ldif")],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=err)
    try:
        try:
            port = _read_port(proc, 30.0)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-2000:]}") from None
        yield LdapDirectory(f"ldap://127.0.0.1:{port}", password, proc, log)
    finally:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(home, ignore_errors=True)


def _serve(ldif_path: str) -> None:  # pragma: no cover - runs in the subprocess
    """The server: the LDIF as an in-memory tree, ldaptor's LDAPServer on 127.0.0.1:0."""
    from ldaptor.inmemory import fromLDIFFile
    from ldaptor.interfaces import IConnectedLDAPEntry
    from ldaptor.protocols.ldap.ldapserver import LDAPServer
    from twisted.internet import defer, protocol, reactor
    from twisted.python import components, log

    class Factory(protocol.ServerFactory):
        def __init__(self, root: object) -> None:
            self.root = root

        def buildProtocol(self, addr: object) -> LDAPServer:
            proto = LDAPServer()
            proto.debug = True  # one log line per request and response; bind passwords masked
            proto.factory = self
            return proto

    components.registerAdapter(lambda factory: factory.root, Factory, IConnectedLDAPEntry)
    log.startLogging(sys.stderr, setStdout=False)  # stdout carries the port

    @defer.inlineCallbacks
    def start() -> object:
        with open(ldif_path, "rb") as f:
            root = yield fromLDIFFile(f)
        port = reactor.listenTCP(0, Factory(root), interface="127.0.0.1")
        sys.stdout.write(f"LISTENING {port.getHost().port}\n")
        sys.stdout.flush()

    reactor.callWhenRunning(start)
    reactor.run()


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        _serve(sys.argv[1])
