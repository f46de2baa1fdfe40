"""Entry point: the root command group, global kubectl-style options and exit codes.

Exit codes (documented in README):
  0 success · 1 findings (scan) or a generic failure · 2 usage error · 3 not found ·
  4 permission denied / authentication failed · 5 unavailable / throttled (retry) ·
  6 invalid config or input · 7 conflict · 130 interrupted
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from secretsync import __version__
from secretsync.core.errors import SecretSyncError

from .context import CliContext, client_settings
from .logsetup import setup_logging

#: name -> "module:attribute". Modules load only when their command runs (or --help lists them).
_COMMANDS: dict[str, str] = {
    "version": "secretsync.cli.basic_cmds:version",
    "providers": "secretsync.cli.basic_cmds:providers_cmd",
    "secret": "secretsync.cli.secret_cmds:secret",
    "scan": "secretsync.cli.scan_cmds:scan",
    "migrate": "secretsync.cli.migrate_cmds:migrate",
    "controller": "secretsync.cli.controller_cmds:controller",
    "import-eso": "secretsync.cli.api_cmds:import_eso",
    "crds": "secretsync.cli.api_cmds:crds",
    "audit": "secretsync.cli.audit_cmds:audit",
    "refresh": "secretsync.cli.rotation_cmds:refresh",
    "rotate": "secretsync.cli.rotation_cmds:rotate",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; a missing module is skipped."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in _COMMANDS if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        cmd = getattr(module, attr, None)
        return cmd if isinstance(cmd, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False), help="Path to a kubeconfig.")
@click.option("--context", "kube_context", help="The kubeconfig context to use.")
@click.option("-n", "--namespace", help="Namespace to work in.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Work across all namespaces.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    envvar="SECRETSYNC_LOG_LEVEL",
    show_default=True,
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--rate-limit", type=click.FloatRange(min=0.01), envvar="SECRETSYNC_RATE_LIMIT",
              help="Client-side limit on provider API calls per second, per store (default: none).")
@click.option("--rate-burst", type=click.IntRange(min=1), default=20, show_default=True,
              envvar="SECRETSYNC_RATE_BURST", help="Calls that may go at once before --rate-limit applies.")
@click.option("--timeout", "call_timeout", type=click.FloatRange(min=0.5), default=15.0, show_default=True,
              envvar="SECRETSYNC_TIMEOUT", help="Seconds one provider call may take before it is Unavailable.")
@click.version_option(__version__, "--version", prog_name="secretsync")
@click.pass_context
def cli(
    ctx: click.Context,
    kubeconfig: str | None,
    kube_context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    log_level: str,
    log_format: str,
    rate_limit: float | None,
    rate_burst: int,
    call_timeout: float,
) -> None:
    """Take secrets out of Kubernetes plaintext and keep them in secret managers.

    Stores are addressed by URL: aws://REGION[/PREFIX], gcp://PROJECT, azure://VAULT,
    vault://[HOST:PORT]/MOUNT, file://PATH, memory://.
    """
    setup_logging(log_level, log_format)
    ctx.obj = CliContext(
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        namespace=namespace,
        all_namespaces=all_namespaces,
        client_settings=client_settings(rate_limit, rate_burst, call_timeout),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, turning secretsync errors into a one-line message and an exit code.

    Returns the exit code (the console script and ``python -m`` pass it to ``sys.exit``).
    """
    try:
        result = cli.main(args=argv, prog_name="secretsync", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except SecretSyncError as exc:
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)  # stdout closed early (| head): nothing left to say
    except OSError as exc:
        # The machine said no (a full disk, a read-only or missing location, permissions): the
        # user's to fix, not a bug. The system's words and the path only, never str(exc) of an
        # arbitrary library (it could quote anything). Writers name their file (atomicfile.naming).
        logging.getLogger("secretsync.cli").debug("system error", exc_info=True)
        where = f": {exc.filename}" if exc.filename is not None else ""
        click.echo(f"error: {exc.strerror or type(exc).__name__}{where}", err=True)
        sys.exit(1)
    except Exception as exc:
        # A bug, not a user error: still one line (its type only; the message of an arbitrary
        # exception could quote anything, values included), the traceback at --log-level debug.
        logging.getLogger("secretsync.cli").debug("unexpected error", exc_info=True)
        click.echo(f"error: unexpected {type(exc).__name__} (a secretsync bug; rerun with "
                   "--log-level debug for the traceback)", err=True)
        sys.exit(1)


def _one_line(text: str, limit: int = 2000) -> str:
    """Error messages print on one line, however an SDK formatted them."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
