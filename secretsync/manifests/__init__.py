"""Reading manifest trees: one tree walker, one bounded YAML loader, for every job.

Why a layer of its own: ``scan``, ``migrate`` and ``audit`` all read the same messy trees
(Helm templates, alias bombs, directories a thousand levels deep, symlink farms). Each used
to read them its own way, and each way had its own hole (a RecursionError in one walker, a
22 GB alias expansion in one loader). Here they share one walk (:mod:`.tree`), one
line-aware parser for finding values (:mod:`.documents`) and one typed loader for working on
objects (:mod:`.loader`), with the same limits. It sits between the jobs and the core and
knows nothing about secrets.
"""

from typing import Final

#: Exit code of ``scan`` and ``audit`` when some input could not be read (a malformed or
#: unreadable file, an unlistable directory) and nothing worse happened; findings (exit 1) win.
EXIT_INCOMPLETE: Final = 8
