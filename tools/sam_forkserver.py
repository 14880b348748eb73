"""Serve `sam` invocations from one preloaded SAM CLI: sam_forkserver.py --sam PATH SOCKET [--vary NAME]...

Every `sam local invoke` of `make sam-local` is a fresh Python process, and most of its
CPU goes to importing SAM CLI (about 2 s of the 2 cores per invocation, x 106
fixtures). This server imports SAM CLI's own entry point and the local invoke command
modules once, then forks per request: each child is a copy of a process that has
imported sam and done nothing else, and runs the real click entry point with the
request's arguments, the way the `sam` console script does. Nothing of one invocation
reaches the next, since the parent never runs a command.

PATH is the venv's `sam` console script. Its `from samcli.cli.main import cli` line
names the entry point, which is imported from there, so the server follows SAM if that
ever moves. sys.path[0] and sys.argv[0] are set as they are when the script runs.

SOCKET is a unix socket path (in a private temp dir: the per-invocation temp files go
next to it). The socket appears only once the server listens (it is bound under a
temporary name and renamed), so a client may wait for the path to exist. One JSON line
per connection:

  {"args": [...], "env": {...}, "cwd": "..."}   run `sam ARGS`; the parent forks
      the child sends {"pid": N}, then {"code": N, "stdout": B64, "stderr": B64}
      (or {"error": "..."} if it could not run sam at all), one line each
  {"kill": N}   SIGKILL child N if it is still running (the client gave up on it);
      the parent answers {"killed": bool}. Only the parent knows whether N is still
      its unreaped child, so only it can signal N without risking a reused PID.

The child replaces os.environ entirely with "env" (plus what the interpreter set in
its own environment as it started, as an exec'd sam's would: LC_CTYPE, see
startup_changes) and changes to "cwd". Start the
server with the environment the requests will carry: what SAM CLI and its
dependencies read at import time (HOME, LANG, SAM_CLI_CONTAINER_CONNECTION_TIMEOUT,
__SAM_CLI_TELEMETRY_ENDPOINT_URL, BOTO_DISABLE_CRT, ...) was read in the parent.
A request's env may differ from the server's own only in the variables named by
--vary (the Invoker passes AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the calling
function's credentials); any other difference is refused, because the preloaded
modules would not have seen it. SAM reads the credentials at invoke time: the local
Lambda runner asks a new boto3 Session for them per invocation
(samcli/commands/local/lib/local_lambda.py, _get_session_creds), and the Docker
client is built from os.environ when the command runs
(samcli/local/docker/container_client.py).

The child's fd 1 and 2 are unlinked temp files, so SAM's stdout (the function's
answer) and stderr (its logs and the function's) come back separately; fd 0 is
/dev/null, as for a `sam` run without input. SystemExit gives the exit code (click
ends every command with one); before answering, the child does what the interpreter
does at exit (joins non-daemon threads, runs atexit handlers, flushes stdio), then
leaves with os._exit so nothing of the parent's runs twice.

The parent starts no threads (forking a threaded process copies locks in whatever
state other threads left them), reaps children on SIGCHLD, and exits on SIGTERM or
when its stdin reaches EOF, i.e. when the process that started it is gone.
"""
import argparse
import atexit
import base64
import gc
import importlib
import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import traceback

# Modules a `sam local invoke` imports, preloaded in the parent. The entry point
# (samcli.cli.main, from the console script) comes first; then what click and SAM
# import lazily on the way to the command: the `local` group, the invoke command, and
# what the invoke command imports inside do_cli and cli() (samcli/commands/local/
# invoke/cli.py, samcli/cli/main.py). A module missing here is only imported in each
# child, which is slower, not different.
PRELOAD = [
    "samcli.commands.local.local",
    "samcli.commands.local.invoke.cli",
    "samcli.commands.exceptions",
    "samcli.commands.local.cli_common.invoke_context",
    "samcli.commands.local.lib.exceptions",
    "samcli.commands.local.lib.local_lambda",
    "samcli.commands.validate.lib.exceptions",
    "samcli.lib.providers.exceptions",
    "samcli.lib.utils.name_utils",
    "samcli.lib.utils.subprocess_utils",
    "samcli.lib.telemetry.metric",
    "samcli.local.docker.lambda_debug_settings",
    "samcli.local.docker.manager",
    "samcli.local.lambdafn.exceptions",
    "samtranslator.plugins.api.implicit_rest_api_plugin",
    "samtranslator.plugins.api.implicit_http_api_plugin",
]

children = set()

# What PEP 538 locale coercion sets LC_CTYPE to (CPython tries these in order).
COERCED_LOCALES = ("C.UTF-8", "C.utf8", "UTF-8")


def log(msg):
    print(f"sam_forkserver[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def entry_point(script):
    """The (module, attribute) the console script calls, e.g. samcli.cli.main, cli."""
    with open(script, encoding="utf-8") as f:
        m = re.search(r"^from ([\w.]+) import (\w+)$", f.read(), re.MULTILINE)
    if not m:
        raise SystemExit(f"sam_forkserver: no `from MODULE import NAME` line in {script}")
    return m.group(1), m.group(2)


def startup_changes():
    """The environment the server was given, and the variables the interpreter itself
    set in os.environ as it started.

    With no LC_ALL, LC_CTYPE or LANG (the Invoker passes none), CPython coerces the C
    locale (PEP 538) and sets LC_CTYPE=C.UTF-8 in its environment, where SAM and its
    subprocesses see it. A `sam` exec'd with a request's env would do the same, so the
    children apply these on top of the request's env. On Linux the environment the
    server was given is /proc/self/environ; elsewhere, an LC_CTYPE that coercion would
    have set is taken to be its doing.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            given = {}
            for kv in f.read().split(b"\0"):
                k, sep, v = kv.partition(b"=")
                if sep:
                    given[os.fsdecode(k)] = os.fsdecode(v)
    except OSError:
        given = dict(os.environ)
        if given.get("LC_CTYPE") in COERCED_LOCALES and not given.get("LC_ALL"):
            del given["LC_CTYPE"]
    return given, {k: v for k, v in os.environ.items() if given.get(k) != v}


def reap(_signum, _frame):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)


def terminate(_signum, _frame):
    raise SystemExit(0)


def read_line(conn, limit=64 << 20):
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            raise ValueError("request too large")
    return bytes(buf)


def send(conn, obj):
    conn.sendall(json.dumps(obj).encode() + b"\n")


def exit_code(code):
    """The process exit status for SystemExit(code), as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_child(conn, listener, tmpdir, req, script, main):
    """Runs in the forked child; never returns."""
    status = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        listener.close()
        send(conn, {"pid": os.getpid()})
        fds = []
        for name in ("stdout", "stderr"):
            path = os.path.join(tmpdir, f"{name}-{os.getpid()}")
            fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(path)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.environ.clear()
        os.environ.update(req["env"])  # with the interpreter's start-up changes (serve)
        os.chdir(req["cwd"])
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.close(devnull)
        sys.argv = [script, *req["args"]]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = exit_code(e.code)
        except BaseException:  # what the interpreter prints for an uncaught exception
            traceback.print_exc()
            code = 1
        # The rest of the interpreter's exit: wait for non-daemon threads, atexit
        # handlers (SAM registers its telemetry flush there), flush stdio.
        threading._shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                code = code or 120
        out = []
        for fd in fds:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            out.append(base64.b64encode(b"".join(chunks)).decode())
        send(conn, {"code": code, "stdout": out[0], "stderr": out[1]})
    except BaseException as e:
        status = 1
        try:
            send(conn, {"error": f"{type(e).__name__}: {e}"})
        except OSError:
            pass
    finally:
        os._exit(status)


def serve(listener, tmpdir, script, main, vary, given_env, startup):
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            log("stdin closed (the process that started the server is gone); exiting")
            return
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        try:
            conn.settimeout(10)
            req = json.loads(read_line(conn))
            conn.settimeout(None)
            if "kill" in req:
                pid = int(req["kill"])
                if pid in children:
                    os.kill(pid, signal.SIGKILL)
                send(conn, {"killed": pid in children})
                continue
            args, env, cwd = req["args"], req["env"], req["cwd"]
            if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
                raise ValueError("args must be a list of strings")
            if not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
                raise ValueError("env must be an object of strings")
            differ = sorted(k for k in set(env) | set(given_env) if env.get(k) != given_env.get(k) and k not in vary)
            if differ:
                raise ValueError(
                    f"env differs from the server's in {differ}: SAM CLI may have read them at import "
                    f"(start the server with that environment, or name them with --vary if SAM reads them per invocation)"
                )
            if not isinstance(cwd, str):
                raise ValueError("cwd must be a string")
            # The same env as the server's (but for vary) gives the same start-up
            # changes: what an exec'd sam would have in os.environ.
            req["env"] = {**env, **startup}
            sys.stdout.flush()
            sys.stderr.flush()
            # SIGCHLD stays blocked until the PID is recorded, so that a child that
            # ends at once is not reaped before it is in children.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            try:
                pid = os.fork()
                if pid == 0:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                    run_child(conn, listener, tmpdir, req, script, main)
                children.add(pid)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        except (OSError, ValueError, KeyError, TypeError) as e:
            try:
                send(conn, {"error": f"{type(e).__name__}: {e}"})
            except OSError:
                pass
        finally:
            conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sam", required=True, help="the venv's sam console script")
    ap.add_argument("--vary", action="append", default=[], help="a variable requests may set differently")
    ap.add_argument("socket")
    opts = ap.parse_args()
    script = os.path.abspath(opts.sam)
    vary = set(opts.vary)

    # As when the console script runs: its directory is sys.path[0] (not tools/).
    sys.path[0] = os.path.dirname(script)
    start = time.process_time()
    module, attr = entry_point(script)
    main_fn = getattr(importlib.import_module(module), attr)
    for name in PRELOAD:
        importlib.import_module(name)
    if threading.active_count() != 1:
        raise SystemExit(f"sam_forkserver: importing SAM CLI started threads {threading.enumerate()}; forking is unsafe")
    # Everything imported so far lives as long as the server: keep it out of the
    # collector, so that children do not touch (and copy) those pages.
    gc.collect()
    gc.freeze()
    given_env, startup = startup_changes()
    if vary & set(startup):
        raise SystemExit(f"sam_forkserver: --vary {sorted(vary & set(startup))}: the interpreter sets those at start")

    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, terminate)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = opts.socket + ".tmp"
    try:
        listener.bind(tmp)
        listener.listen(128)
        os.rename(tmp, opts.socket)
        log(
            f"{module}.{attr} and {len(PRELOAD)} command modules imported in {time.process_time() - start:.1f} s CPU; "
            f"listening on {opts.socket}; set by the interpreter at start, applied to every request: {startup}"
        )
        serve(listener, os.path.dirname(os.path.abspath(opts.socket)), script, main_fn, vary, given_env, startup)
    finally:
        listener.close()
        for p in (tmp, opts.socket):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    main()
