"""``omnibatch plugin``: tools for provider plugin authors.

A click group the main CLI registers (``cli.add_command(plugin)``); also runnable on its own as
``python -m omnibatch.cli_plugin``. The renderer is imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["plugin"]


@click.group("plugin", context_settings={"help_option_names": ["-h", "--help"]})
def plugin() -> None:
    """Write a provider plugin: a package of its own, found through its entry point."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder in which the package folder omnibatch-NAME is created.",
)
@click.option("--display-name", help="Human name of the provider (default: from NAME).")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@click.option(
    "--openai-compatible",
    "openai_compatible",
    is_flag=True,
    help="The provider copies OpenAI's Files and Batch API: render a facts object on "
    "omnibatch's OpenAI-compatible base instead of a whole adapter and dialect.",
)
def new(
    name: str, dest: Path, display_name: str | None, force: bool, openai_compatible: bool
) -> None:
    """Create the package of a new provider NAME from omnibatch's template.

    The package (adapter, status map, emulator dialect, contract tests, CI config) installs
    and passes its tests as generated; then change its wire details to the provider's API.
    """
    from omnibatch.scaffold import render_plugin

    try:
        root = render_plugin(
            name,
            dest,
            display_name=display_name,
            force=force,
            openai_compatible=openai_compatible,
        )
    except (ValueError, FileExistsError) as exc:
        # A bad NAME or an occupied folder is a usage problem: exit 2, like a bad option.
        raise click.UsageError(str(exc)) from exc
    click.echo(f"created {root}")
    click.echo("next:")
    click.echo(f"  cd {root}")
    click.echo('  python -m pip install -e ".[test]"')
    click.echo("  python -m pytest      # the contract suite passes before any edit")
    where = "the facts in facts.py" if openai_compatible else "every line marked WIRE DETAIL"
    click.echo(f"then change {where} to the provider's API.")


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    plugin(prog_name="omnibatch plugin")
