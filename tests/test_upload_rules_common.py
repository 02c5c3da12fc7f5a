"""ts_isr.commands.common: every failure is one line and its documented exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ts_isr.commands.common import command_parser, load_command_config, run_command, use_logfile
from ts_isr.commands.upload_rules import parser as upload_rules_parser
from ts_isr.errors import ConfigError, DeviceError, Exit, LockedError
from ts_isr.lock import run_lock
from ts_isr.log import add_secret, escape, log

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (DeviceError("device said no; fix it"), Exit.FAILED),
        (ConfigError("bad key"), Exit.CONFIG),
        (LockedError("held"), Exit.LOCKED),
    ],
)
def test_ts_error_is_one_line_and_its_exit_code(capsys, error, code):
    def body() -> Exit:
        raise error

    assert run_command(body, quiet=True) == code
    out = capsys.readouterr().out
    assert out == f"[ERROR] : {error}\n"


def test_body_exit_code_is_returned(tmp_path):
    logfile = tmp_path / "out.log"

    def body() -> Exit:
        log.info("hello")
        return Exit.CHANGED

    assert run_command(body, logfile=logfile, quiet=True) == Exit.CHANGED
    assert "[INFO ] : hello" in logfile.read_text()


def test_interrupt_and_bug_are_one_line(capsys, tmp_path):
    def interrupted() -> Exit:
        raise KeyboardInterrupt

    def buggy() -> Exit:
        raise ZeroDivisionError("boom")

    assert run_command(interrupted, quiet=True) == Exit.FAILED
    assert capsys.readouterr().out.count("\n") == 1
    logfile = tmp_path / "out.log"
    assert run_command(buggy, logfile=logfile, quiet=True) == Exit.FAILED
    out = capsys.readouterr().out
    assert out.startswith("[ERROR] : internal error: ZeroDivisionError: boom") and out.count("\n") == 1
    assert "Traceback" in logfile.read_text()


def test_unwritable_logfile_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_command(lambda: Exit.UNCHANGED, logfile=blocker / "sub" / "x.log") == Exit.FAILED
    assert capsys.readouterr().out.startswith("[ERROR] : cannot write the log")


def test_config_secrets_are_masked(tmp_path, capsys):
    path = tmp_path / "threatstop.conf"
    path.write_text(
        "device=192.0.2.1\nblock_list=b.threatstop.local\nusername=u\npassword=pw-S3cret\nenable_pw=en-S3cret\n"
    )
    path.chmod(0o600)
    args = command_parser("x", "test").parse_args(["--config", str(path)])

    def body() -> Exit:
        config = load_command_config(args.config)
        log.warning(f"leak {config.password} {config.enable_pw}")
        return Exit.UNCHANGED

    assert run_command(body, quiet=True) == Exit.UNCHANGED
    out = capsys.readouterr().out
    assert "S3cret" not in out and out.count("******") == 2


def test_missing_config_says_where_it_looked(tmp_path, capsys):
    missing = tmp_path / "nowhere.conf"
    assert run_command(lambda: load_command_config(str(missing)), quiet=True) == Exit.CONFIG
    out = capsys.readouterr().out
    assert (
        out.startswith(f"[ERROR] : no config file {missing}") and "run setup" in out and out.count("\n") == 1
    )


def test_unwritable_logfile_from_the_config_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_command(lambda: use_logfile(blocker / "tsoutput.log"), quiet=True) == Exit.FAILED
    out = capsys.readouterr().out
    assert out.startswith("[ERROR] : cannot write the log") and out.count("\n") == 1


def test_log_file_is_private_and_an_escaped_secret_is_masked(tmp_path, capsys):
    """Review items 4 and 5: the device dialogue is the owner's alone; escaping never unmasks a secret."""
    secret = "p\\wé-secret"
    add_secret(secret)
    logfile = tmp_path / "new-dir" / "tsoutput.log"
    old_umask = os.umask(0o022)
    try:

        def body() -> Exit:
            reply = "Password: " + secret + " and \x1b[2J"
            log.debug(f"reply: {escape(reply)} and {secret}")
            return Exit.UNCHANGED

        assert run_command(body, logfile=logfile, quiet=True) == Exit.UNCHANGED
    finally:
        os.umask(old_umask)
    text = logfile.read_text()
    assert "reply: Password: ****** and \\x1b[2J and ******" in text, text
    assert "\x1b" not in text and "secret" not in text
    assert oct(logfile.stat().st_mode & 0o777) == "0o600"
    assert oct(logfile.parent.stat().st_mode & 0o777) == "0o700"


def test_a_broken_pipe_is_harmless_only_when_it_is_stdout(capsys):
    """Review item 8: a broken pipe elsewhere (the device's socket) is a failure, not "unchanged"."""

    def socket_gone() -> Exit:
        raise BrokenPipeError(32, "Broken pipe")

    assert run_command(socket_gone, quiet=True) == Exit.FAILED
    out = capsys.readouterr().out
    assert out.startswith("[ERROR] : internal error: BrokenPipeError") and out.count("\n") == 1

    script = (
        "import sys\n"
        "from ts_isr.commands.common import run_command\n"
        "def body():\n"
        "    for n in range(1_000_000):\n"
        "        print(f'block 192.0.2.{n % 256}/32')\n"
        "    return 4\n"
        "sys.exit(run_command(body, quiet=True))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    child.stdout.readline()
    child.stdout.close()  # `| head -1`
    assert child.wait(timeout=60) == Exit.UNCHANGED
    assert child.stderr.read() == b""


def test_the_lock_holder_is_escaped_and_a_failed_run_unlocks(tmp_path, capsys):
    """Review items 16 and 29: the lock file's text is another program's; Unlocking is logged on failure."""
    path = tmp_path / "state" / "x.lock"

    def locked_out() -> Exit:
        with run_lock(path, "x"):
            path.write_bytes(b"12\x1b[2J\n")
            with run_lock(path, "x"):
                return Exit.CHANGED

    assert run_command(locked_out, quiet=False) == Exit.LOCKED
    out = capsys.readouterr().out
    assert "\x1b" not in out and "(pid 12\\x1b[2J)" in out
    assert out.index("Locking current") < out.index("Unlocking current") < out.index("[ERROR]")


def test_force_says_both_guards_it_overrides():
    """Review item 18: --force also overrides the empty-list guard; its help says so."""
    force = next(action for action in upload_rules_parser()._actions if "--force" in action.option_strings)
    assert "max_shrink" in force.help and "empty" in force.help
