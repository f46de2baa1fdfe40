"""Writing a file so that a crash leaves either the old bytes or the new, and no stray temp file.

Why one module: the migrator (sources, new files, rollback) and the embedded file store both
replace files that may hold plaintext or a store. The classic recipe (temp file in the same
directory, fsync, ``os.replace``, fsync the directory) leaves the temp file behind when the
process is killed between creating it and renaming it; with a random name nothing finds it
again, and after a killed rollback it holds the *original plaintext*. So the temp file here
has one fixed name per target (:func:`temp_path`): the next write of the same file removes
it, resume and rollback sweep it by the journal's file names (:func:`sweep_temp`), and
``scan`` recognises the name and reports it when it holds a secret. It is created 0600 and
only gets the target's mode just before the rename.

Fault injection (tests only): ``SECRETSYNC_TEST_CRASH_AT=POINT[@N]`` makes the process
SIGKILL itself at the N-th (default first) time it reaches the named write point
(:func:`write_point`). The points are listed in :data:`WRITE_POINTS`; nothing else reads the
variable.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Final

CRASH_AT_ENV: Final = "SECRETSYNC_TEST_CRASH_AT"
#: Suffix of every temp file this module writes: ``.NAME.secretsync-tmp`` beside ``NAME``.
TEMP_SUFFIX: Final = ".secretsync-tmp"

#: Every named write point, in the order one write passes them.
WRITE_POINTS: Final = (
    "tmp-created",      # the temp file exists, empty
    "tmp-written",      # the new bytes are in the temp file, not yet fsync'd
    "tmp-synced",       # the temp file is durable, the target still holds the old bytes
    "replaced",         # the rename happened, the directory not yet fsync'd
    "before-unlink",    # atomic_delete: the file is still there
    "unlinked",         # atomic_delete: the file is gone, the directory not yet fsync'd
    "journal-torn",     # journal: half a line written
    "key-pending",      # file store: a new key is written, the store not yet
    "store-written",    # file store: the first store is written, its key not yet in place
)

_seen: dict[str, int] = {}


def write_point(name: str) -> None:
    """Die here (SIGKILL, as a power cut or ``kill -9`` would) when the fault hook names this point."""
    target = os.environ.get(CRASH_AT_ENV)
    if not target:
        return
    point, _, nth = target.partition("@")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)


def temp_path(path: Path) -> Path:
    """The one temp file name used while ``path`` is being replaced."""
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


#: The random temp names of releases before this module (``tempfile.mkstemp``): ``.app.yaml.k3j_x9q2.tmp``.
_LEGACY_TEMP = re.compile(r"^\.(.+)\.[a-z0-9_]{8}\.tmp$")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temp file of an interrupted write (this module's or an older release's)."""
    return (name.startswith(".") and name.endswith(TEMP_SUFFIX) and len(name) > len(TEMP_SUFFIX) + 1) \
        or _LEGACY_TEMP.match(name) is not None


def target_of_temp(name: str) -> str:
    """``.app.yaml.secretsync-tmp`` (or ``.app.yaml.k3j_x9q2.tmp``) -> ``app.yaml``."""
    legacy = _LEGACY_TEMP.match(name)
    if legacy is not None:
        return legacy.group(1)
    return name[1 : -len(TEMP_SUFFIX)]


def fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temp(path: Path) -> bool:
    """Remove the temp file a killed write of ``path`` left behind; whether there was one."""
    tmp = temp_path(path)
    try:
        tmp.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(tmp.parent)
    return True


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError raised inside the block the file it is about.

    Why: a ``write`` or ``fsync`` that fails (a full disk, a file size limit, an I/O error)
    raises an OSError with no file name, so the user would read "File too large" without
    knowing which file. The CLI prints an OSError as ``strerror: filename`` (a path and the
    system's words: never a value); errno and the subclass (PermissionError...) are kept.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` by ``data``: after a crash it holds the old bytes or the new ones.

    Callers serialise writes of one path (the journal's step order, the store's lock).
    """
    with naming(path):
        _atomic_write(path, data, mode)


def _atomic_write(path: Path, data: bytes, mode: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a killed write of this same file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            write_point("tmp-created")
            fh.write(data)
            fh.flush()
            write_point("tmp-written")
            os.fsync(fh.fileno())
        write_point("tmp-synced")
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    write_point("replaced")
    fsync_dir(path.parent)


def atomic_delete(path: Path) -> None:
    write_point("before-unlink")
    path.unlink()
    write_point("unlinked")
    fsync_dir(path.parent)
