"""Command line: `recsched check | plan | status | reload | run | demo | fake-provider`
(also `python -m scheduler`).

Exit status: 0 success, 2 invalid configuration or usage, 1 any other failure.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from scheduler import __version__
from scheduler.calls import Call, LiveCall, LvbCall
from scheduler.clock import wall_clock
from scheduler.config import CST, Config, load_config
from scheduler.cron import dst_note, fixed_offset
from scheduler.durations import format_duration
from scheduler.errors import ConfigError, StoreError
from scheduler.journal import is_journal
from scheduler.lock import AlreadyRunning
from scheduler.planner import plan, summary
from scheduler.providers.lvb import CHANNEL_AT, END_TIME_AT, START_TIME_AT, format_cst

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
LOG_LEVELS = ("debug", "info", "warning", "error")

DOCS = "/usr/share/doc/recsched/README.md"  # where the Debian package installs the manual
URL = "https://example.org/recsched#readme"  # [project.urls] Documentation

DESCRIPTION = """\
Record Tencent Cloud live streams and web pages on schedule: recsched reads recording windows
from a YAML file and drives two providers:
  type: lvb   Tencent Cloud LVB: Live_Tape_Start for each chunk of a window (real-time
              chunks of at most 30 minutes sent at their instant, scheduled ones ahead of
              it; China Standard Time on the wire);
  type: web   Tencent's web-page recording function (Start, Pause, Resume, Refresh, Stop,
              then the recorded files) through its API Gateway.
Never twice for the same chunk: a retry within 3 s could create a duplicate paid task."""

EPILOG = f"""\
examples:
  recsched demo                                   watch it work against a local fake provider
  recsched check -c /etc/recsched/recsched.yaml   validate a file (run before every reload)
  recsched plan -c recsched.yaml --hours 48       upcoming calls, in CST
  recsched plan -c recsched.yaml --now 2026-12-01T19:59:50+08:00 --json
  LVB_KEY=... recsched run -c recsched.yaml       the daemon (JSON log lines on stdout)
  recsched status -c recsched.yaml                what is recording, what is next, what failed
  recsched reload                                 apply an edit to the running daemon, or
                                                  print why it was refused (exit 2)

The config file may also be given as $RECSCHED_CONFIG. Exit status: 0 ok, 2 invalid
configuration or usage, 1 other failure. Every config key and provider is documented in
{DOCS} (the Debian package) and at {URL}."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsched",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recsched {__version__}")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="the least severe log lines `run` and `demo` write (default info)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "-c",
            "--config",
            default=os.environ.get("RECSCHED_CONFIG"),
            required="RECSCHED_CONFIG" not in os.environ,
            help="the YAML schedule (default: $RECSCHED_CONFIG)",
        )
        return command

    with_config(
        "check",
        "validate the config file; print every problem with file:line:column "
        "and key path; exit 2 if invalid (secrets must resolve)",
    )
    plan_cmd = with_config(
        "plan", "print the provider calls the daemon would make, in CST (secrets are not needed)"
    )
    plan_cmd.add_argument(
        "--hours", type=float, default=48.0, help="how far ahead to plan (default 48)"
    )
    plan_cmd.add_argument(
        "--now",
        type=_instant,
        default=None,
        metavar="ISO",
        help="plan as if it were this instant, e.g. 2026-12-01T19:59:50+08:00 "
        "(a time without offset is read in CST)",
    )
    plan_cmd.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per call and line: at, recording, provider, action, key, params",
    )
    status = with_config(
        "status",
        "what is recording now, the next calls and the last outcomes (problems first), "
        "read from the ledger; works whether the daemon runs or not",
    )
    status.add_argument("--json", action="store_true", help="the same as one JSON document")
    status.add_argument("--last", type=int, default=20, help="how many outcomes (default 20)")
    reload_cmd = sub.add_parser(
        "reload",
        help="ask the running daemon to re-read its file and wait for its verdict",
        description="Ask the running daemon to re-read its YAML file (as SIGHUP does) and wait "
        "for the outcome: exit 0 and the applied diff, or exit 2 and every problem "
        "(file:line:column: key.path: message) with the running schedule untouched. "
        "The unit's ExecReload= runs this, so `systemctl reload recsched` reports the same.",
    )
    reload_cmd.add_argument(
        "--socket",
        default=None,
        help="the daemon's control socket (default: $RECSCHED_CONTROL_SOCKET, else control.sock "
        "in $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/recsched or the state directory)",
    )
    reload_cmd.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the verdict (default 60)"
    )
    run_cmd = with_config("run", "run the daemon until SIGTERM/SIGINT (JSON logs on stdout)")
    run_cmd.add_argument(
        "--dry-run", action="store_true", help="log every call it would send, send none"
    )
    run_cmd.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="auto = JSON unless stdout is a terminal",
    )
    demo = sub.add_parser(
        "demo",
        help="run the daemon against a local fake provider on a window "
        "starting in a few seconds, then exit",
    )
    demo.add_argument("--chunk", type=int, default=5, help="chunk length in seconds (default 5)")
    demo.add_argument("--chunks", type=int, default=3, help="number of chunks (default 3)")
    demo.add_argument(
        "--lead", type=int, default=5, help="seconds until the window starts (default 5)"
    )
    demo.add_argument("--dir", default=None, help="where to write demo.yaml (default: a temp dir)")
    demo.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    fake = sub.add_parser(
        "fake-provider",
        help="serve a local fake of the LVB API for "
        "trying `recsched run` without a Tencent account",
    )
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8080)
    fake.add_argument("--appid", type=int, default=1234)
    fake.add_argument(
        "--key-env",
        default="LVB_KEY",
        help="environment variable holding the API key to verify (default LVB_KEY)",
    )
    fake.add_argument(
        "--web",
        action="store_true",
        help="serve the web-page recording function instead (POST /release/record), "
        "verifying API Gateway app auth with $WEB_APP_KEY and $WEB_APP_SECRET",
    )
    fake.add_argument(
        "--live",
        action="store_true",
        help="serve LIVE API 3.0 recording tasks instead (POST /), verifying TC3-HMAC-SHA256 "
        "with $TC_SECRET_ID and $TC_SECRET_KEY",
    )
    return parser


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CST)


def _complain(text: str, priority: int = 3) -> None:
    """One line to stderr; under systemd with a journal priority (`<3>` error, `<4>` warning),
    so `journalctl -p warning` shows a refused start or reload too."""
    prefix = f"<{priority}>" if is_journal(sys.stderr) else ""
    print(f"{prefix}{text}", file=sys.stderr)


def _report(exc: ConfigError) -> None:
    files = sorted({problem.file for problem in exc.problems})
    _complain(f"recsched: {', '.join(files)} is invalid ({len(exc.problems)} problem(s)):")
    for problem in exc.problems:
        _complain(f"  {problem}")


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """check and plan build one large plan and exit: the cyclic garbage collector would only
    re-scan it (a third of the time on 10,000 recordings) and find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for warning in config.warnings:
        _complain(f"warning: {warning}", 4)
    count, at = summary(config, wall_clock())  # len(plan(...)) without building the calls
    first = at.astimezone(CST).isoformat() if at is not None else "none in the horizon"
    print(
        f"{args.config}: OK: {len(config.recordings)} recording(s), "
        f"{len(config.providers)} provider(s), {count} call(s) in the next "
        f"{format_duration(config.daemon.horizon)}, first at {first}"
    )
    return EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    config = load_config(args.config, resolve_secrets=False)
    now = args.now or wall_clock()
    calls = plan(config, now, timedelta(hours=args.hours))
    if args.json:
        for call in calls:
            print(json.dumps(call.to_json(), ensure_ascii=False))
        return EXIT_OK
    print(
        f"{len(calls)} call(s) from {now.astimezone(CST):%Y-%m-%d %H:%M:%S} CST for {args.hours:g}h"
    )
    header = ("AT (CST)", "RECORDING", "ACTION", "CHANNEL/PAGE", "START → END (CST)", "CHUNK")
    rows = [header] + [_plan_row(c) for c in calls]
    local = _window_starts(config, calls)
    if any(local):  # the window's start in the file's zone, when it says more than CST does
        zone = f"WINDOW START ({config.timezone.key})"
        rows = [(*r[:-1], text, r[-1]) for r, text in zip(rows, [zone, *local], strict=True)]
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    line = "  ".join(f"%-{width}s" for width in widths)  # each cell padded to its column
    sys.stdout.write("\n".join([(line % row).rstrip() for row in rows]) + "\n")
    return EXIT_OK


def _window_starts(config: Config, calls: list[Call]) -> list[str]:
    """Each call's window start in the file's zone with its UTC offset, and why, when a DST
    change moved or doubled it (cron.dst_note). All "" when every one is a CST time."""
    tz = config.timezone
    if not calls:
        return []
    first = min(c.window_start for c in calls)
    last = max(c.window_start for c in calls)
    if fixed_offset(tz, first.astimezone(UTC), last.astimezone(UTC)) == timedelta(hours=8):
        return [""] * len(calls)  # every start is a CST time and no DST change moved one
    crons = {r.name: r.cron for r in config.recordings}
    shown, differs = [], False
    windows: dict[tuple[str, datetime], str] = {}  # a window's chunks share its start
    for c in calls:
        text = windows.get((c.recording, c.window_start))
        if text is None:
            start = c.window_start.astimezone(tz)
            expression = crons.get(c.recording)
            note = dst_note(expression, tz, c.window_start) if expression else ""
            differs = differs or bool(note) or start.utcoffset() != timedelta(hours=8)
            text = windows[c.recording, c.window_start] = f"{start:%Y-%m-%d %H:%M%z}" + (
                f" ({note})" if note else ""
            )
        shown.append(text)
    return shown if differs else [""] * len(calls)


def _plan_row(c: Call) -> tuple[str, ...]:
    if isinstance(c, LvbCall):
        params = c.params
        start = params[START_TIME_AT][1]  # format_cst(c.start), written when planned
        return (
            start if c.at == c.start else format_cst(c.at),  # a real-time call goes at its start
            c.recording,
            c.action,
            params[CHANNEL_AT][1],
            f"{start} → {params[END_TIME_AT][1][11:]}",
            f"{c.chunk}/{c.chunks}",
        )
    at = format_cst(c.at)
    data = json.loads(c.data)
    if isinstance(c, LiveCall) and "StreamName" in data:  # a create: its stream and span
        span = (
            f"{c.start.astimezone(CST):%Y-%m-%d %H:%M:%S} → {c.deadline.astimezone(CST):%H:%M:%S}"
        )
        return (at, c.recording, c.action, data["StreamName"], span, f"{c.chunk}/{c.chunks}")
    page = data.get("RecordURL") or f"task {c.chunk}"  # a web call (or a live Stop/Delete)
    span = f"{at} → {c.deadline.astimezone(CST):%H:%M:%S}" if c.action == "Start" else ""
    return (at, c.recording, c.action, page, span, f"{c.chunk}/{c.chunks}")


def _status(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler.status import collect, render

    config = load_config(args.config, resolve_secrets=False)
    try:
        data = asyncio.run(collect(config, wall_clock(), args.last))
    except StoreError as exc:
        _complain(f"recsched: {exc}")
        return EXIT_FAILURE
    print(render(data, args.json))
    return EXIT_OK


def _reload(args: argparse.Namespace) -> int:
    from scheduler.control import ControlError, request_reload
    from scheduler.paths import control_socket

    path = Path(args.socket) if args.socket else control_socket(os.environ)
    try:
        outcome = request_reload(path, args.timeout)
    except ControlError as exc:
        _complain(f"recsched: reload not done: {exc}")
        return EXIT_FAILURE
    if outcome.ok:
        for line in outcome.lines:
            print(line)
        return EXIT_OK
    _complain(
        f"recsched: reload rejected ({len(outcome.lines)} problem(s)); "
        "the running schedule is unchanged:"
    )
    for line in outcome.lines:
        _complain(f"  {line}")
    return EXIT_CONFIG


def _json_logs(choice: str) -> bool | None:
    return None if choice == "auto" else choice == "json"


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler import logs

    logs.configure(json=_json_logs(args.log_format), level=args.log_level)
    config = load_config(args.config, reusable=True)  # a reload reads only what changed
    from scheduler import daemon, heap  # aiohttp, SQLAlchemy, APScheduler: only to run

    heap.tune()  # the collector's thresholds for a daemon's bursts
    return asyncio.run(daemon.run(config, dry_run=args.dry_run))


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler import logs
    from scheduler.demo import run_demo

    logs.configure(json=_json_logs(args.log_format), level=args.log_level)
    return asyncio.run(
        run_demo(chunk=args.chunk, chunks=args.chunks, lead=args.lead, directory=args.dir)
    )


def _fake(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler import logs
    from scheduler.fakes.lvb import serve_forever

    logs.configure()
    if args.web:
        return _fake_web(args)
    if args.live:
        return _fake_live(args)
    key = os.environ.get(args.key_env)
    if not key:
        _complain(f"recsched: set ${args.key_env} to the key the fake should verify")
        return EXIT_CONFIG
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(args.host, args.port, args.appid, key))
    return EXIT_OK


def _fake_web(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler.fakes.web import serve_forever

    app_key, app_secret = os.environ.get("WEB_APP_KEY"), os.environ.get("WEB_APP_SECRET")
    if not app_key or not app_secret:
        _complain("recsched: set $WEB_APP_KEY and $WEB_APP_SECRET to verify")
        return EXIT_CONFIG

    def ready(url: str) -> None:
        print(f"fake web-page recording function at {url}", file=sys.stderr)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(app_key, app_secret, args.host, args.port, ready=ready))
    return EXIT_OK


def _fake_live(args: argparse.Namespace) -> int:
    import asyncio

    from scheduler.fakes.live import serve_forever

    secret_id, secret_key = os.environ.get("TC_SECRET_ID"), os.environ.get("TC_SECRET_KEY")
    if not secret_id or not secret_key:
        _complain("recsched: set $TC_SECRET_ID and $TC_SECRET_KEY to verify")
        return EXIT_CONFIG

    def ready(url: str) -> None:
        print(f"fake LIVE API 3.0 at {url}", file=sys.stderr)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(secret_id, secret_key, args.host, args.port, ready=ready))
    return EXIT_OK


def console() -> NoReturn:
    """The `recsched` and `python -m scheduler` entry point: main(), then exit.

    check and plan exit without tearing down what they built: a 10,000-recording plan is a
    million objects, and freeing them one by one at exit took a fifth of `check`'s time.
    Nothing else is left to do then (no file open but stdout and stderr, flushed here)."""
    args = _parser().parse_args()
    if args.command not in ("check", "plan"):
        raise SystemExit(_dispatch(args))
    gc.disable()  # and not enabled again: its first collection would scan the whole plan
    code = _dispatch(args)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # `recsched plan | head`: the reader went away
            stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    return _dispatch(_parser().parse_args(argv))


def _dispatch(args: argparse.Namespace) -> int:
    commands = {
        "status": _status,
        "reload": _reload,
        "check": _check,
        "plan": _plan,
        "run": _run,
        "demo": _demo,
        "fake-provider": _fake,
    }
    try:
        if args.command in ("check", "plan"):
            with _no_cyclic_gc():
                return commands[args.command](args)
        return commands[args.command](args)
    except ConfigError as exc:
        _report(exc)
        return EXIT_CONFIG
    except (AlreadyRunning, StoreError) as exc:
        _complain(f"recsched: {exc}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:  # `recsched plan --json | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
