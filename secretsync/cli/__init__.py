"""The ``secretsync`` command line. Subcommands load lazily so ``--help`` stays fast."""
