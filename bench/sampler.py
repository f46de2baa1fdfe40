"""Run ``secretsync`` under a wall-clock stack sampler (all threads): where a cold start goes.

cProfile sees only the thread that enabled it and py-spy is not installed here, so this
samples ``sys._current_frames()`` every ``interval`` seconds and counts, per function, the
samples where it is on top of a stack (self) and anywhere in it (cumulative), for threads
that are running Python code (a thread blocked in a socket read shows as that read: the
report separates waiting from working by the leaf function's module).

    python -m bench.sampler OUT.txt -- controller --kubeconfig ...      (what bench.controller_bench --profile runs)
    python -m bench.sampler --cpu OUT.txt -- controller ...            (CPU: a cProfile per thread, merged)
    python -m bench.sampler --mem OUT.txt -- controller ...            (memory held, by tracemalloc)

The report is written on SIGUSR1 (and sampling goes on), and when the process gets SIGTERM or exits.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import cProfile
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

#: Leaf functions that mean "this thread waits" (I/O, locks, sleeps), not "this thread works".
WAITING = ("wait", "acquire", "readinto", "recv_into", "recv", "select", "poll", "sleep", "_wait_for_tstate_lock",
           "get", "read", "accept", "readline", "do_handshake")


def _where(f: FrameType) -> str:
    co = f.f_code
    return f"{co.co_filename.rsplit('site-packages/', 1)[-1]}:{co.co_name}"


class Sampler(threading.Thread):
    def __init__(self, out: Path, interval: float = 0.005) -> None:
        super().__init__(daemon=True, name="sampler")
        self.out = out
        self.interval = interval
        self.self_counts: collections.Counter[str] = collections.Counter()
        self.cum_counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self.working = 0
        self._stop = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            for tid, frame in sys._current_frames().items():
                if tid == me:
                    continue
                self.samples += 1
                if frame.f_code.co_name in WAITING:
                    continue
                self.working += 1
                self.self_counts[_where(frame)] += 1
                seen = set()
                f: FrameType | None = frame
                while f is not None:
                    w = _where(f)
                    if w not in seen:
                        seen.add(w)
                        self.cum_counts[w] += 1
                    f = f.f_back

    def report(self, stop: bool = True) -> None:
        if stop:
            self._stop.set()
        lines = [f"{self.samples} thread samples, {self.working} working (not in a wait/read leaf)", "",
                 "self (working samples):"]
        lines += [f"{n:8d} {100 * n / max(1, self.working):5.1f}%  {w}" for w, n in self.self_counts.most_common(60)]
        lines += ["", "cumulative (working samples):"]
        lines += [f"{n:8d} {100 * n / max(1, self.working):5.1f}%  {w}" for w, n in self.cum_counts.most_common(80)]
        self.out.write_text("\n".join(lines) + "\n")


class CpuProfiler:
    """``--cpu``: a cProfile per thread (``threading.setprofile``), merged in the report.

    The wall-clock sampler cannot tell a thread waiting for the GIL or a C-level lock from one
    that works (both show the Python frame that called into C); on 2 cores shared with the
    API server the question is whose *CPU* a cold start spends, which this answers."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        def begin(frame: FrameType, event: str, arg: object) -> None:
            sys.setprofile(None)
            prof = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(prof)
            prof.enable()

        threading.setprofile(begin)
        main_prof = cProfile.Profile(time.thread_time)
        self.profiles.append(main_prof)
        main_prof.enable()

    def report(self, stop: bool = True) -> None:
        import io
        import pstats

        with self._lock:
            profiles = list(self.profiles)
        threading.setprofile(None)
        buf = io.StringIO()
        stats = pstats.Stats(profiles[0], stream=buf)
        for prof in profiles[1:]:
            with contextlib.suppress(TypeError, ValueError):
                stats.add(prof)
        stats.sort_stats("tottime").print_stats(60)
        stats.sort_stats("cumulative").print_stats(80)
        self.out.write_text(buf.getvalue())  # (profiling ends at the first report)


class MemoryProfiler:
    """``--mem``: tracemalloc from the start; the report lists what is held when it is written
    (the bench writes it once every ExternalSecret is Ready), by line and by file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        #: The first report's snapshot: later reports add what grew since (a soak's leak hunt).
        self.first: Any = None
        self.reports = 1

    def start(self) -> None:
        import tracemalloc

        tracemalloc.start(1)

    def report(self, stop: bool = True) -> None:
        import gc
        import tracemalloc

        gc.collect()
        snap = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"traced now {current / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB", "", "by line:"]
        lines += [str(st) for st in snap.statistics("lineno")[:40]]
        lines += ["", "by file:"]
        lines += [str(st) for st in snap.statistics("filename")[:30]]
        lines += ["", "by type (objects the collector tracks; their own size, not what they point to):"]
        lines += _by_type(gc.get_objects())
        out = self.out
        if self.first is None:
            self.first = snap
        else:
            lines += ["", "grown since the first report, by line:"]
            lines += [str(st) for st in snap.compare_to(self.first, "lineno")[:40]]
            self.reports += 1
            out = out.with_name(f"{out.name}.{self.reports}")  # the first report stays
        out.write_text("\n".join(lines) + "\n")


def _by_type(objects: list[object], top: int = 30) -> list[str]:
    """Count and shallow size per type (dataclasses by their module.name): which of the
    controller's per-object structures add up, where tracemalloc's lines only say who allocated."""
    import collections

    count: collections.Counter[str] = collections.Counter()
    size: collections.Counter[str] = collections.Counter()
    for obj in objects:
        tp = type(obj)
        name = tp.__name__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
        count[name] += 1
        size[name] += sys.getsizeof(obj)
    return [f"{size[n] / 2**10:10.0f} KiB {count[n]:9d} {n}" for n, _ in size.most_common(top)]


def main() -> None:
    mode = sys.argv[1] if sys.argv[1] in ("--cpu", "--mem") else ""
    args = sys.argv[2:] if mode else sys.argv[1:]
    out = Path(args[0])
    argv = sys.argv[sys.argv.index("--") + 1:]
    sampler: Sampler | CpuProfiler | MemoryProfiler = (
        CpuProfiler(out) if mode == "--cpu" else MemoryProfiler(out) if mode == "--mem" else Sampler(out))
    sampler.start()
    done = False

    def finish() -> None:
        nonlocal done
        if not done:
            done = True
            sampler.report()

    atexit.register(finish)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        finish()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    # SIGUSR1: write the report so far and go on (the bench sends it when all are Ready).
    signal.signal(signal.SIGUSR1, lambda signum, frame: sampler.report(stop=False))
    from secretsync.cli.main import cli

    cli.main(args=argv, prog_name="secretsync")


if __name__ == "__main__":
    main()
