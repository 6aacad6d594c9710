"""The Typer app: option parsing only. Each command builds its options value and calls into its module,
imported when the command runs (``llmproxy --help`` stays fast). A ``CLIError`` raised anywhere below is
rendered once, here, by the top-level group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from llmproxy.cli.batches import batches_app
from llmproxy.cli.files import files_app
from llmproxy.cli.keys import keys_app
from llmproxy.cli.options import ConfigPaths, LogsOptions, RouteTestOptions, ServeOptions
from llmproxy.cli.pipes import PipeClosed


class _Group(TyperGroup):
    """Renders what goes wrong once, in one style: a ``CLIError`` and Click's usage errors both end in
    ``error: …`` on stderr (exit 1, or 2 for a usage error); a closed pipe becomes ``PipeClosed``."""

    def invoke(self, ctx):
        return _guarded(super().invoke, ctx)

    def make_context(self, *args, **kwargs):  # `llmproxy --help | head -1` prints the help here
        return _guarded(super().make_context, *args, **kwargs)


def _guarded(call, *args, **kwargs):
    from typer._click.exceptions import ClickException, UsageError

    from llmproxy.cli.console import CLIError, err, render_error

    try:
        return call(*args, **kwargs)
    except CLIError as exc:
        render_error(exc)
        raise typer.Exit(exc.code) from None
    except UsageError as exc:
        if exc.ctx is not None:
            hint = f"Try '{exc.ctx.command_path} {exc.ctx.help_option_names[-1]}' for help."
            err.print(exc.ctx.get_usage() + "\n" + hint + "\n", markup=False, soft_wrap=True)
        render_error(CLIError(exc.format_message(), exc.exit_code))
        raise typer.Exit(exc.exit_code) from None
    except ClickException as exc:
        render_error(CLIError(exc.format_message(), exc.exit_code))
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:  # the reader went away: cli/main.py exits 0
        raise PipeClosed() from None


HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings=HELP, help="llmproxy: a local LLM routing proxy that speaks the Anthropic API.")
config_app = typer.Typer(no_args_is_help=True, help="Write or validate the configuration file.")
kg_app = typer.Typer(no_args_is_help=True, help="Inspect the keyword knowledge graphs.")
app.add_typer(config_app, name="config")
app.add_typer(kg_app, name="kg")
demo_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                       help="Four Claude Code sessions in tmux, one per profile, with the request log beside them.")
app.add_typer(demo_app, name="demo")
app.add_typer(batches_app, name="batches")
app.add_typer(files_app, name="files")
app.add_typer(keys_app, name="keys")



def _version(value: bool) -> None:
    if value:
        from llmproxy import __version__

        typer.echo(f"llmproxy {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_version,
                                                help="print the version and exit")] = False) -> None:
    """llmproxy: a local LLM routing proxy that speaks the Anthropic API."""


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE", help="config file (default: $LLMPROXY_HOME/config.toml)")]
ProfileDirOpt = Annotated[list[Path] | None, typer.Option("--profile-dir", metavar="DIR", help="extra directory of profile .toml files")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
FleetOpt = Annotated[bool, typer.Option("--fleet", help="every instance sharing the store ([store] url), from the store")]
PortOpt = Annotated[int | None, typer.Option("--port", metavar="PORT", help="port of the daemon to start if none runs (default from config)")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", metavar="NAME", help="profile to route through (default: server.default_profile)")]


def _paths(config: Path | None, profile_dir: list[Path] | None) -> ConfigPaths:
    return ConfigPaths(config, tuple(profile_dir or ()))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(metavar="ADDRESS", help="address to bind (default from config: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(metavar="PORT", help="port (default from config: 3456)")] = None,
    config: ConfigOpt = None,
    profile_dir: ProfileDirOpt = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: one line per request; -vv: bodies too")] = 0,
    simulate: Annotated[bool, typer.Option(help="serve every provider with the offline simulator")] = False,
    daemon: Annotated[bool, typer.Option(help="detach; return once /health answers")] = False,
    allow_remote: Annotated[bool, typer.Option(help="allow binding a non-loopback address without proxy API keys")] = False,
    workers: Annotated[str, typer.Option(metavar="N|auto", help="worker processes sharing the port: a number, or 'auto' for one per core (a shared gateway; a personal daemon needs 1)")] = "1",
) -> None:
    """Run the proxy (foreground unless --daemon)."""
    from llmproxy.cli import servecmd

    raise typer.Exit(servecmd.serve(ServeOptions(host, port, _paths(config, profile_dir), verbose, simulate, daemon,
                                                 allow_remote, workers)))


@app.command()
def stop() -> None:
    """Stop the daemon gracefully (escalates to SIGKILL after the grace period). Nothing running: exit 0."""
    from llmproxy.cli import lifecycle

    raise typer.Exit(lifecycle.stop())


@app.command()
def status(json_out: JsonOpt = False, fleet: FleetOpt = False) -> None:
    """Is the daemon running? pid, address, uptime, profiles, providers, requests served, stale config.
    With --fleet: every instance sharing the store (address, version, last heartbeat, circuits)."""
    if fleet:
        from llmproxy.cli import fleet as fleet_mod

        raise typer.Exit(fleet_mod.status_fleet(json_out))
    from llmproxy.cli import lifecycle

    raise typer.Exit(lifecycle.status(json_out))


@app.command()
def reload() -> None:
    """Re-read config, profiles and knowledge graphs in the running daemon; non-zero exit if that failed."""
    from llmproxy.cli import reloadcmd

    raise typer.Exit(reloadcmd.reload())


@app.command("route-test")
def route_test(
    text: Annotated[str | None, typer.Argument(metavar="TEXT", help="the user's prompt")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="NAME", help="one profile, explained in detail (default: every profile, one row each)")] = None,
    all_profiles: Annotated[bool, typer.Option("--all-profiles", help="one row per profile (the default without --profile)")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the Decision(s) as JSON")] = False,
    request: Annotated[Path | None, typer.Option("--request", metavar="FILE", help="a full Anthropic request body (JSON file, - for stdin)")] = None,
    why_not: Annotated[str | None, typer.Option("--why-not", metavar="CONCEPT", help="say why CONCEPT did not fire for the text (closest term, and what stopped it)")] = None,
    config: ConfigOpt = None,
    profile_dir: ProfileDirOpt = None,
) -> None:
    """Explain where a prompt (or a recorded request) would be routed, without calling any model."""
    from llmproxy.cli import routetest

    opts = RouteTestOptions(text, None if all_profiles else profile, json_out, request, _paths(config, profile_dir),
                            why_not=why_not)
    raise typer.Exit(routetest.run(opts))


@app.command()
def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new requests")] = False,
    n: Annotated[int, typer.Option("-n", metavar="N", help="how many recent requests to show first")] = 20,
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="NAME", help="only this profile")] = None,
    scenario: Annotated[str | None, typer.Option(metavar="NAME", help="only this scenario (e.g. keyword, background, default)")] = None,
    provider: Annotated[str | None, typer.Option(metavar="NAME", help="only this provider")] = None,
    status: Annotated[str | None, typer.Option(metavar="STATUS", help="error, ok, a code (429) or a class (5xx)")] = None,
    since: Annotated[str | None, typer.Option(metavar="WHEN", help="e.g. 10m, 2h, 1d, or an ISO time")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="raw JSON lines, for jq")] = False,
    bodies: Annotated[bool, typer.Option(help="pretty-print recorded request/response bodies")] = False,
) -> None:
    """Show the request log (time, profile, scenario, target, status, TTFT, duration, tokens, cost)."""
    from llmproxy.cli import logs as logs_mod

    raise typer.Exit(logs_mod.logs(LogsOptions(follow, n, profile, scenario, provider, status, since, json_out, bodies)))


@app.command()
def stats(
    since: Annotated[str | None, typer.Option(metavar="WHEN", help="window, e.g. 1h (default: the whole current log)")] = None,
    json_out: JsonOpt = False,
    fleet: FleetOpt = False,
    by: Annotated[str | None, typer.Option("--by", metavar="GROUPS", help="group by profile, model and/or key (comma-separated; default: profile,model)")] = None,
) -> None:
    """Per profile and per model (--by key: per client key): requests, errors, p50/p95 latency and TTFT, tokens,
    cost, scenario share. With --fleet: every instance's usage from the store's per-minute ledger (requests,
    errors, tokens, cost)."""
    if fleet:
        from llmproxy.cli import fleet as fleet_mod

        raise typer.Exit(fleet_mod.stats_fleet(since, json_out))
    from llmproxy.cli import logs as logs_mod

    raise typer.Exit(logs_mod.stats(since, json_out, by=by))


@config_app.command("init")
def config_init(
    path: Annotated[Path | None, typer.Option("--path", metavar="FILE", help="where to write (default: $LLMPROXY_HOME/config.toml)")] = None,
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented starter config."""
    from llmproxy.cli import configcmd

    raise typer.Exit(configcmd.init(path, force))


@config_app.command("check")
def config_check(config: ConfigOpt = None, profile_dir: ProfileDirOpt = None) -> None:
    """Validate config, profiles and knowledge graphs; report every problem; non-zero exit if any."""
    from llmproxy.cli import configcmd

    raise typer.Exit(configcmd.check(_paths(config, profile_dir)))


@kg_app.command("check")
def kg_check(
    profile: Annotated[str | None, typer.Argument(metavar="PROFILE", help="profile (default: all)")] = None,
    config: ConfigOpt = None,
    profile_dir: ProfileDirOpt = None,
) -> None:
    """Every problem at once: unreadable concept files, duplicate terms, empty concepts, unknown routes,
    too-short terms."""
    from llmproxy.cli import configcmd

    raise typer.Exit(configcmd.kg_check(profile, _paths(config, profile_dir)))


@demo_app.callback()
def demo(
    ctx: typer.Context,
    prompts: Annotated[bool, typer.Option("--prompts/--no-prompts", help="type one scenario prompt into each session")] = True,
    prompt_file: Annotated[Path | None, typer.Option(metavar="FILE", help="TOML file: fast = \"…\", intelligent = \"…\", …")] = None,
    attach: Annotated[bool, typer.Option(help="attach to the grid when run from a terminal")] = False,
    workdir: Annotated[Path | None, typer.Option(metavar="DIR", help="working directory (default: a scratch project)")] = None,
    claude: Annotated[str | None, typer.Option(metavar="PATH", help="path to the claude executable")] = None,
    install_claude: Annotated[bool, typer.Option("--install-claude", help="install Claude Code with npm under $LLMPROXY_HOME if missing")] = False,
    socket: Annotated[str | None, typer.Option(metavar="NAME", help="tmux socket name (tmux -L)")] = None,
    wait: Annotated[bool, typer.Option(help="wait until every prompt is answered")] = False,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="seconds to wait for prompts and answers")] = 120.0,
    port: PortOpt = None,
) -> None:
    """Open the demo (subcommands: status, stop)."""
    if ctx.invoked_subcommand is not None:
        return
    from llmproxy.cli import democmd

    raise typer.Exit(democmd.demo(prompts, prompt_file, attach, workdir, claude, install_claude, socket, wait, timeout,
                                  port=port))


@demo_app.command("status")
def demo_status(json_out: JsonOpt = False) -> None:
    """Each session, whether Claude Code is up, and the last routes logged for each profile."""
    from llmproxy.cli import democmd

    raise typer.Exit(democmd.demo_status(json_out))


@demo_app.command("stop")
def demo_stop() -> None:
    """Kill only what the demo created (and the daemon only if the demo started it). Nothing running: exit 0."""
    from llmproxy.cli import democmd

    raise typer.Exit(democmd.demo_stop())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def code(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    claude: Annotated[str | None, typer.Option("--claude", metavar="PATH", help="path to the claude executable")] = None,
    port: PortOpt = None,
) -> None:
    """Run Claude Code in this terminal through a profile (starts the daemon if needed). Every other argument
    goes to claude as it is (`llmproxy code --profile fast -p "hi"` runs `claude -p "hi"`)."""
    from llmproxy.cli import claudeenv

    raise typer.Exit(claudeenv.code(profile, claude, list(ctx.args), port))


@app.command()
def env(
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="NAME", help="profile to route through (default: server.default_profile)")] = None,
    shell: Annotated[str, typer.Option(metavar="SHELL", help="bash, zsh, sh, fish or powershell")] = "bash",
) -> None:
    """Print the lines that point Claude Code at the proxy (eval "$(llmproxy env -p fast)")."""
    from llmproxy.cli import claudeenv

    raise typer.Exit(claudeenv.env(profile, shell))


@app.command()
def ui(
    port: PortOpt = None,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="open it in a browser when there is one")] = True,
) -> None:
    """The live dashboard: starts the daemon if needed, prints the page's URL and opens it in a browser."""
    from llmproxy.cli import ui as ui_mod

    raise typer.Exit(ui_mod.run(port, open_browser))


@app.command()
def statusline() -> None:
    """One line for Claude Code's status bar (reads the session JSON on stdin): profile, last route, cost.
    Set it up with the snippet `llmproxy env` prints."""
    from llmproxy.cli import statusline as sl

    raise typer.Exit(sl.main())
