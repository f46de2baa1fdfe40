"""Change detection with the fewest provider calls: one cache per store, shared by every ExternalSecret.

The baseline (External Secrets Operator) reads every remote key of every ExternalSecret on
every refresh: 10k ExternalSecrets on a 1h interval are 10k GetSecretValue calls an hour,
however few secrets changed, and a key used by 50 namespaces is read 50 times. Here a
*cycle* of one store does:

1. **list** the store's metadata once (``client.list(ListFilter(prefix=...))``, one call per
   page; the prefix is the longest common prefix of the keys in use), giving each secret's
   change token (its version, else its update time);
2. **fetch** only the keys in use whose token moved since the last fetch (or that are
   missing from the listing: a definite NotFound is only ever concluded from a fetch),
   through ``get_many`` in backend-sized batches (AWS BatchGetSecretValue: 20 per call);
3. tell the runtime which keys changed, so exactly the ExternalSecrets that use them are
   re-synced.

Every ExternalSecret due for refresh reads from this cache; a cycle runs only when the
cache is older than the ExternalSecret's refresh interval, so however many ExternalSecrets
use a key, it is fetched at most once per cycle (ClusterExternalSecret fan-out costs one
fetch for N namespaces).

When listing cannot pay for itself (no change token in the listing, or a listing takes
more calls than re-fetching every key in use, e.g. a few keys in a huge account), the
cache switches to *direct* mode: re-fetch the keys in use in batches each cycle. It
decides from the calls the last listing and fetches actually cost (counted with the
store's :class:`~secretsync.core.calls.CallRecorder`), and re-probes the listing now and
then because the set of keys in use changes. A listing must be *clearly* cheaper
(``LIST_MARGIN``): a list cycle still fetches whatever changed, walks the listing one page
at a time where direct fetches run concurrently, and a measured per-key cost carries noise
(a cold cycle's first call also pays the session setup). A listing that costs at least one
fetch per *listed secret* (Vault/OpenBao KV v2: a LIST gives names only, so one metadata
read per secret) can never beat fetching the keys in use, whatever they become, so direct
mode stops probing it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from secretsync.core.calls import CallRecorder
from secretsync.core.contract import Fetched, ListFilter, SecretMetadata, SecretsClient, chunked
from secretsync.core.errors import InvalidConfig, NotFound, PermissionDenied, ProviderError, Unavailable
from secretsync.core.values import SecretValue

log = logging.getLogger(__name__)

LIST = "list"
DIRECT = "direct"
#: List mode only when a listing costs less than this fraction of re-fetching every key in use.
LIST_MARGIN = 0.9
#: Errors that belong to one key (or one listing prefix), not to the store: a forbidden,
#: malformed or disabled key must not fail the cycle of every other key.
PER_KEY_ERRORS = (PermissionDenied, InvalidConfig, NotFound)
#: A listing of at least this many secrets that cost about a fetch per secret is per-secret
#: (not paged): with fewer, one page of one secret would look the same.
PER_SECRET_MIN_LISTED = 20


@dataclass(frozen=True, slots=True)
class Entry:
    """What the cache knows about one remote key: a value (with its version) or an error."""

    value: SecretValue | None
    version: str | None
    error: ProviderError | None
    #: The listing's change token when this entry was (re)confirmed; None = unknown.
    token: str | None

    @property
    def absent(self) -> bool:
        return isinstance(self.error, NotFound)


def change_token(meta: SecretMetadata | None) -> str | None:
    """The version if the listing has one, else the update time; None if neither."""
    if meta is None:
        return None
    if meta.version:
        return f"v:{meta.version}"
    if meta.updated is not None:
        return f"t:{meta.updated.isoformat()}"
    return None


def common_prefix(names: Iterable[str]) -> str:
    it = iter(names)
    first = next(it, None)
    if first is None:
        return ""
    prefix = first
    for name in it:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
            if not prefix:
                return ""
    return prefix


@dataclass(frozen=True, slots=True)
class Usage:
    """What the ExternalSecrets of one store need: remote keys, and find prefixes (None = all)."""

    keys: frozenset[str]
    find_prefixes: tuple[str | None, ...] = ()


class StoreCache:
    """Per-store values, versions and the listing; thread-safe; one cycle at a time."""

    def __init__(
        self,
        client: SecretsClient,
        recorder: CallRecorder,
        usage: Callable[[], Usage],
        on_changed: Callable[[set[str]], None] | None = None,
        *,
        name: str = "",
        fetch_concurrency: int = 4,
        on_cycle: Callable[[str, str], None] | None = None,
        probe_every: int = 10,
        clock: Callable[[], float] = time.monotonic,
        settle: bool = False,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.usage = usage
        self.on_changed = on_changed
        self.name = name
        self.on_cycle = on_cycle
        self.fetch_concurrency = fetch_concurrency
        self.probe_every = probe_every
        self._clock = clock
        self._lock = threading.Lock()  # guards the dicts below
        self._io = threading.Lock()  # one provider conversation at a time per store
        self._entries: dict[str, Entry] = {}
        self._pinned: dict[tuple[str, str], Entry] = {}
        #: dataFrom.find listings, one per find prefix (None = whole store), listed on their
        #: own so that one tenant's find never widens (or breaks) the listing of others' keys.
        self._finds: dict[str | None, dict[str, SecretMetadata] | ProviderError] = {}
        #: The store may not list (PermissionDenied): keys are read directly. Text for status.
        self.listing_denied: str | None = None
        self.cycle_at = -math.inf
        self.cycles = 0
        self.mode = LIST
        self._direct_cycles = 0
        #: The last listing cost about a fetch per listed secret: probing it again cannot pay.
        self.listing_per_secret = False
        #: Measured: calls one listing took, and calls per fetched key.
        self.list_calls: int | None = None
        self.fetch_cost: float | None = None
        self.last_cycle_calls = 0
        #: After a cycle that saw changes, list once more at once (see :meth:`refresh`).
        self.settle = settle
        #: True from a cycle that saw changes until its settling cycle is over.
        self.settling = False
        self._in_settle = False
        #: A cycle is running (under ``_io``): other refreshes answer from the last one.
        self._cycling = False
        #: While a *cold* cycle runs (an empty cache: start-up, a changed store): the keys it
        #: has still to fetch (None: no cold cycle; ``_cold_planned`` False: not known yet).
        #: Readers wait for their own keys instead of for the whole cycle (see :meth:`entries`).
        self._cold: set[str] | None = None
        self._cold_planned = False
        #: Keys readers are waiting for: the cold cycle fetches their batches first.
        self._asked: list[str] = []
        self._arrived = threading.Condition(self._lock)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's provider conversation (so call counts per cycle stay exact)."""
        with self._io:
            yield

    # -- cycle -----------------------------------------------------------------------------
    def fresh(self, max_age: float) -> bool:
        return self._clock() - self.cycle_at <= max_age

    def refresh(self, max_age: float) -> bool:
        """Run a cycle unless one finished within ``max_age`` seconds. True if this call ran one.

        Store-wide failures (outage, bad credentials) raise; per-key errors land in entries.
        """
        if self.fresh(max_age):
            return False
        if self._cycling and max_age > 0 and self._cold is not None:
            # A cold cycle is fetching every key in use: the caller's keys arrive batch by
            # batch, and :meth:`entries` waits for those alone. Waiting here for all 10k
            # keys left the API server idle through the fetch and the provider idle through
            # the writes that followed (a cold start is both, one after the other).
            return False
        if self._cycling and self.cycles > 0 and max_age > 0:
            # Another worker is running the cycle: answer from the last one instead of
            # waiting. The cycle queues (urgently) every ExternalSecret whose keys it finds
            # changed, so nothing is missed; waiting here instead put every worker of the
            # store behind a listing that takes seconds (100 pages for 10k secrets): the
            # profile of a cold start showed 3/4 of the workers' time blocked on this lock.
            # A forced or probing read (max_age 0) still waits for a real answer.
            return False
        with self._io:
            if self.fresh(max_age):  # another worker just ran it
                return False
            self._cycling = True
            with self._lock:
                if not self._entries:
                    self._cold, self._cold_planned = set(), False
            try:
                self._run_cycle()
                if self.settling:
                    # A burst of rotations (a script, a provider-side rotation of related keys)
                    # can straddle a cycle: half of a workload's Secrets seen now, half one
                    # interval later, two restarts. One more listing right away sees the rest
                    # of the burst; the rollout manager holds restarts while ``settling``.
                    self._in_settle = True
                    try:
                        self._run_cycle()
                    finally:
                        self._in_settle = False
                        self.settling = False
            finally:
                self._cycling = False
                self._end_cold()
            return True

    def _run_cycle(self) -> None:
        mode = self.mode
        try:
            self._cycle()
        except ProviderError:
            self.settling = False
            if self.on_cycle is not None:
                self.on_cycle(mode, "error")
            raise
        if self.on_cycle is not None:
            self.on_cycle(mode, "ok")

    def _calls(self) -> int:
        return self.recorder.total()

    def _cycle(self) -> None:
        usage = self.usage()
        wanted = set(usage.keys)
        # Keys the listing never holds (Azure's certificates and keys) are read every cycle.
        unlisted = self.client.capabilities.unlisted_prefixes
        listable = {k for k in wanted if not k.startswith(unlisted)} if unlisted else wanted
        probe = (self.mode == DIRECT and self._direct_cycles >= self.probe_every
                 and not self.listing_per_secret and self.listing_denied is None)
        with self._lock:
            cold = not self._entries
        # An empty cache fetches every key anyway: listing first would only add calls. The
        # next cycle lists and recognises the fetched versions.
        do_list = bool(listable) and not cold and (self.mode == LIST or probe)
        start_calls = self._calls()
        listing: dict[str, SecretMetadata] | None = None
        if do_list:
            prefix = common_prefix(listable)
            before = self._calls()
            try:
                listing = {m.name: m for m in self.client.list(ListFilter(prefix=prefix or None))}
            except PermissionDenied as exc:
                # ESO's own policies often grant reads without ListSecrets: read directly.
                log.info("store %s: listing denied (%s); reading the keys in use directly", self.name, exc)
                self.listing_denied = str(exc)
                self.mode = DIRECT
            else:
                self.list_calls = self._calls() - before
        find_changed = self._list_finds(usage.find_prefixes)
        with self._lock:
            entries = dict(self._entries)
            found = self._found_listing()
        # Values a find read (they are not in ``wanted``) are kept while a find still lists
        # them and take part in change detection like ``data`` keys: only a moved token is
        # fetched again, so a quiet cycle of a find costs its listing alone.
        held = {k for k in entries if k not in wanted and k in found}
        to_fetch: list[str] = []
        for key in wanted:
            entry = entries.get(key)
            if (listing is None or entry is None or key not in listable
                    or (entry.error is not None and not entry.absent)):
                to_fetch.append(key)
                continue
            if key not in listing:
                # Absent from the listing: confirm with a fetch (listings can lag behind writes),
                # unless we already know it is definitely gone.
                if not entry.absent:
                    to_fetch.append(key)
            elif _moved(listing[key], entries[key]):
                to_fetch.append(key)
        to_fetch += [k for k in held if _moved(found[k], entries[k])]
        tokens: Mapping[str, SecretMetadata] = found if listing is None else {**found, **listing}
        keep = wanted | held
        before = self._calls()
        fetched: dict[str, Entry] = {}
        deliver = None
        if cold and self._cold is not None:
            with self._lock:
                self._cold.update(to_fetch)
                self._cold_planned = True
                self._arrived.notify_all()
            deliver = self._deliver_cold
        try:
            self._fetch(to_fetch, tokens, fetched, deliver=deliver)
        except ProviderError:
            # Keep what the batches before the failure brought; the cycle itself failed.
            changed = self._commit(fetched)
            if changed and self.on_changed is not None:
                self.on_changed(changed)
            raise
        fetch_calls = self._calls() - before
        if to_fetch:
            self.fetch_cost = fetch_calls / len(to_fetch)
        changed = self._commit(fetched)
        with self._lock:
            # Listed keys that did not need a fetch: record the (unchanged) token.
            for key in wanted:
                if key not in fetched and key in self._entries and listing is not None and key in listing:
                    self._entries[key] = _with_token(self._entries[key], change_token(listing[key]))
            for key in held:
                if key not in fetched and key in self._entries:
                    self._entries[key] = _with_token(self._entries[key], change_token(found[key]))
            for key in list(self._entries):
                if key not in keep:
                    del self._entries[key]
            # The listing itself is not kept (50k secrets' metadata per store): the tokens
            # recorded in the entries are what the next cycle compares.
            changed |= find_changed
            self.cycle_at = self._clock()
            self.cycles += 1
        self.last_cycle_calls = self._calls() - start_calls
        self._choose_mode(listing, len(listable))
        if changed and self.settle and not self._in_settle and self.cycles > 1:
            self.settling = True  # before on_changed: the writes it starts see it
        if changed and self.on_changed is not None:
            self.on_changed(changed)
        log.debug("store %s: cycle %d (%s) fetched %d of %d keys in %d calls", self.name, self.cycles,
                  self.mode, len(to_fetch), len(wanted), self.last_cycle_calls)

    def _list_finds(self, prefixes: Iterable[str | None]) -> set[str]:
        """List each find prefix in use on its own; a prefix this store may not list is an
        error of the ExternalSecrets whose find uses it (kept for :meth:`find`), not of the
        cycle. Returns the names that appeared, vanished or changed since the last cycle."""
        changed: set[str] = set()
        new: dict[str | None, dict[str, SecretMetadata] | ProviderError] = {}
        for p in dict.fromkeys(prefixes):
            try:
                got: dict[str, SecretMetadata] | ProviderError = {
                    m.name: m for m in self.client.list(ListFilter(prefix=p or None))}
            except PER_KEY_ERRORS as exc:
                got = exc
            new[p] = got
            with self._lock:
                old = self._finds.get(p)
            if isinstance(got, dict) and isinstance(old, dict):
                changed |= set(got) ^ set(old)
                changed |= {n for n in got if n in old and change_token(got[n]) != change_token(old[n])}
            elif old is not None and isinstance(got, dict) != isinstance(old, dict):
                changed |= set(got) if isinstance(got, dict) else set(old) if isinstance(old, dict) else set()
        with self._lock:
            self._finds = new
        return changed

    def _found_listing(self) -> dict[str, SecretMetadata]:
        """Every name the find listings of this cycle hold (caller holds ``_lock``)."""
        found: dict[str, SecretMetadata] = {}
        for got in self._finds.values():
            if isinstance(got, dict):
                found.update(got)
        return found

    def _commit(self, fetched: Mapping[str, Entry]) -> set[str]:
        changed: set[str] = set()
        with self._lock:
            for key, entry in fetched.items():
                old = self._entries.get(key)
                if old is None or not _same(old, entry):
                    changed.add(key)
                self._entries[key] = entry
        return changed

    def _choose_mode(self, listing: dict[str, SecretMetadata] | None, wanted: int) -> None:
        if listing is None:
            if self.mode == DIRECT:
                self._direct_cycles += 1
            return
        has_tokens = not listing or any(change_token(m) is not None for m in listing.values())
        per_key = self.fetch_cost if self.fetch_cost is not None else 1.0
        direct_cost = wanted * per_key
        list_calls = self.list_calls or 0
        # Listing costs L >= c * |listing| >= c * |keys in use that exist|: with c close to a
        # fetch per key, no set of keys in use ever makes the listing pay.
        self.listing_per_secret = (len(listing) >= PER_SECRET_MIN_LISTED
                                   and list_calls >= LIST_MARGIN * per_key * len(listing))
        new_mode = LIST if has_tokens and list_calls < LIST_MARGIN * direct_cost else DIRECT
        if new_mode != self.mode:
            log.info("store %s: change detection now %s (list %s calls for %d secrets, re-fetch-all %.1f calls%s)",
                     self.name, new_mode, self.list_calls, len(listing), direct_cost,
                     "; the listing costs a call per secret, not probed again" if self.listing_per_secret else "")
        self.mode = new_mode
        self._direct_cycles = 0

    def _end_cold(self) -> None:
        with self._lock:
            if self._cold is not None:
                self._cold, self._cold_planned = None, False
                self._asked.clear()
                self._arrived.notify_all()

    def _deliver_cold(self, got: Mapping[str, Entry]) -> None:
        """A cold cycle's batch is in: readers waiting for these keys go on now.

        First entries are not *changes*: every ExternalSecret that uses them is queued
        already (the informer's initial list, or the store's change queued its dependents),
        so the cycle's ``on_changed`` must not queue them all a second time."""
        with self._lock:
            for key, entry in got.items():
                if key not in self._entries:
                    self._entries[key] = entry
                if self._cold is not None:
                    self._cold.discard(key)
            self._arrived.notify_all()

    def _next_batch(self, batches: list[list[str]], batch_of: dict[str, int], taken: set[int],
                    order: Iterator[int]) -> list[str] | None:
        """The next batch to fetch: one a reader waits for first, else the next in order."""
        with self._lock:
            while self._asked:
                i = batch_of.get(self._asked.pop(), -1)
                if i >= 0 and i not in taken:
                    taken.add(i)
                    return batches[i]
            for i in order:
                if i not in taken:
                    taken.add(i)
                    return batches[i]
        return None

    def _fetch(self, keys: list[str], listing: Mapping[str, SecretMetadata] | None,
               out: dict[str, Entry] | None = None, *,
               deliver: Callable[[Mapping[str, Entry]], None] | None = None) -> dict[str, Entry]:
        """Fetch ``keys`` in batches into ``out`` (filled batch by batch, so a failure keeps the rest).

        ``deliver`` (a cold cycle) gets each batch as it arrives, and batches that readers
        wait for (:meth:`entries`) go ahead of the rest."""
        if out is None:
            out = {}
        if not keys:
            return out
        caps = self.client.capabilities
        size = max(1, caps.max_batch if caps.batch_get else 1)
        batches = list(chunked(sorted(keys), size))

        def one(batch: list[str]) -> dict[str, Entry]:
            try:
                results = self.client.get_many(batch)
            except PER_KEY_ERRORS as exc:
                # One forbidden / malformed / disabled key made the whole batch raise: read
                # the batch key by key so the error lands on that key alone.
                results = {batch[0]: exc} if len(batch) == 1 else {k: self._one(k) for k in batch}
            got: dict[str, Entry] = {}
            for key in batch:
                token = change_token(listing.get(key)) if listing is not None else None
                res = results.get(key)
                if res is None:
                    got[key] = Entry(None, None, Unavailable("no result for key", operation="get_many", key=key),
                                     None)
                elif isinstance(res, ProviderError):
                    got[key] = Entry(None, None, res, None)
                else:
                    got[key] = Entry(res.value, res.version, None, token)
            return got

        batch_of = {key: i for i, batch in enumerate(batches) for key in batch}
        taken: set[int] = set()
        order = iter(range(len(batches)))
        errors: list[ProviderError] = []
        out_lock = threading.Lock()

        def run() -> None:
            while (batch := self._next_batch(batches, batch_of, taken, order)) is not None:
                try:
                    got = one(batch)
                except ProviderError as exc:
                    errors.append(exc)
                    continue
                with out_lock:
                    out.update(got)
                if deliver is not None:
                    deliver(got)

        if len(batches) == 1 or self.fetch_concurrency <= 1:
            run()
        else:
            # A few batches in flight at once: a cold start of 10k keys is 500 round trips on
            # AWS. The store's rate limiter (in the client) still bounds the call rate.
            with ThreadPoolExecutor(min(self.fetch_concurrency, len(batches)),
                                    thread_name_prefix="fetch") as pool:
                for fut in [pool.submit(run) for _ in range(min(self.fetch_concurrency, len(batches)))]:
                    fut.result()
        if errors:
            raise errors[0]
        return out

    def _one(self, key: str) -> Fetched | ProviderError:
        try:
            got = self.client.get_many([key]).get(key)
        except PER_KEY_ERRORS as exc:
            return exc
        return got if got is not None else Unavailable("no result for key", operation="get_many", key=key)

    def refetch(self, keys: Iterable[str]) -> None:
        """Read ``keys`` from the provider now (force-sync, retries): the cache is not trusted
        for them. Store-wide failures raise; per-key errors land in the entries."""
        wanted = sorted(set(keys))
        with self._io:
            fetched = self._fetch(wanted, None)
        changed = self._commit(fetched)
        if changed and self.on_changed is not None:
            self.on_changed(changed)

    # -- reads -----------------------------------------------------------------------------
    def entries(self, keys: Iterable[str]) -> dict[str, Entry]:
        """Entries for ``keys``. Keys the last cycle did not cover are fetched now, together
        with every other key in use that is not cached yet (one batched catch-up instead of
        one call per newly created ExternalSecret)."""
        keys = list(dict.fromkeys(keys))
        with self._lock:
            found = {k: self._entries[k] for k in keys if k in self._entries}
            missing = [k for k in keys if k not in found]
            if missing and self._cold is not None:
                # A cold cycle is running: ask for these keys' batches first, then wait for
                # them alone (a key it does not fetch falls through to the catch-up below,
                # which waits for the cycle to end).
                self._asked.extend(missing)
                while self._cold is not None and (
                        not self._cold_planned or any(k in self._cold for k in missing)):
                    self._arrived.wait(1.0)
                found.update({k: self._entries[k] for k in missing if k in self._entries})
                missing = [k for k in missing if k not in found]
        if missing:
            with self._io:
                with self._lock:
                    found.update({k: self._entries[k] for k in missing if k in self._entries})
                    missing = [k for k in missing if k not in found]
                if missing:
                    extra = self.usage().keys
                    with self._lock:
                        catch_up = [k for k in extra if k not in self._entries and k not in missing]
                    fetched = self._fetch(missing + sorted(catch_up), None)
                    with self._lock:
                        self._entries.update(fetched)
                    found.update({k: fetched[k] for k in missing})
        return found

    def refetch_notified(self, names: Iterable[str]) -> set[str]:
        """Read the named keys now because a change notice named them (controller/changefeed.py).

        Only keys in use are read (a notice for anything else costs nothing). A name under a
        ``find`` prefix expires the listing, so the next reconcile of those ExternalSecrets
        lists again. Returns the keys whose value or state moved; ``on_changed`` hears the
        same, so exactly their ExternalSecrets re-sync. Store-wide failures raise.
        """
        usage = self.usage()
        names = set(names)
        keys = sorted(names & usage.keys)
        found_hit = any(p is None or any(n.startswith(p) for n in names) for p in usage.find_prefixes)
        changed: set[str] = set()
        if keys:
            with self._io:
                fetched: dict[str, Entry] = {}
                try:
                    self._fetch(keys, None, fetched)
                finally:
                    changed = self._commit(fetched)
        if found_hit:
            with self._lock:
                self._listing = None
                self.cycle_at = -math.inf
            changed |= names
        if changed and self.on_changed is not None:
            self.on_changed(changed)
        return changed

    def pinned(self, key: str, version: str) -> Entry:
        """A specific version: immutable, so fetched once and kept while in use."""
        with self._lock:
            hit = self._pinned.get((key, version))
        if hit is not None and (hit.error is None or hit.absent):
            return hit
        with self._io:
            try:
                value = self.client.get(key, version=version)
                entry = Entry(value, version, None, None)
            except ProviderError as exc:
                entry = Entry(None, version, exc, None)
        with self._lock:
            if entry.error is None or entry.absent:
                self._pinned[(key, version)] = entry
        return entry

    def find(self, flt: ListFilter, *, fresh: bool = False) -> list[str]:
        """Names matching a dataFrom.find, from this cycle's listing of the find's own prefix
        (listed now if the cycle has none, or ``fresh``). A listing error is raised to the
        caller: it is the error of the ExternalSecrets using that find."""
        with self._lock:
            listing = None if fresh else self._finds.get(flt.prefix)
        if listing is None:
            with self._io:
                try:
                    listing = {m.name: m for m in self.client.list(ListFilter(prefix=flt.prefix))}
                except PER_KEY_ERRORS as exc:
                    listing = exc
            with self._lock:
                self._finds[flt.prefix] = listing
        if isinstance(listing, ProviderError):
            raise listing
        return sorted(n for n, m in listing.items() if flt.matches(m))

    def forget_pinned(self, keep: set[tuple[str, str]]) -> None:
        with self._lock:
            for k in list(self._pinned):
                if k not in keep:
                    del self._pinned[k]

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {"mode": self.mode, "cycles": self.cycles, "entries": len(self._entries),
                    "list_calls": self.list_calls, "fetch_cost": self.fetch_cost,
                    "listing_per_secret": self.listing_per_secret, "last_cycle_calls": self.last_cycle_calls,
                    "listing_denied": self.listing_denied is not None}


def _moved(meta: SecretMetadata, entry: Entry) -> bool:
    """The listing says this held entry may be stale (or it holds no value worth keeping)."""
    token = change_token(meta)
    return (entry.absent or (entry.error is not None) or token is None
            or (token != entry.token and not _same_version(meta, entry)))


def _same_version(meta: SecretMetadata, entry: Entry) -> bool:
    """The listed version is the one we hold (entries fetched outside a cycle carry no token)."""
    return bool(meta.version) and meta.version == entry.version and entry.error is None


def _same(a: Entry, b: Entry) -> bool:
    if (a.error is None) != (b.error is None):
        return False
    if a.error is not None and b.error is not None:
        return type(a.error) is type(b.error)
    return a.version == b.version and a.value == b.value


def _with_token(entry: Entry, token: str | None) -> Entry:
    return entry if entry.token == token else Entry(entry.value, entry.version, entry.error, token)
