"""Root trusts nothing another user controls (issue 16): a second user, ``nobody``, plants a config,
symlinks and folders where root's commands look; each is refused with one line and nothing it points
at is read, run, appended to or truncated."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import free_port
from tests.support.users import NOBODY, assert_untouched, nobody_writes, nobodys, precious, public_tmp
from ts_isr.errors import Exit
from ts_isr.files import UnsafePath
from ts_isr.policy import Policy
from ts_isr.policystore import load_last_good, save_last_good

ROOT = Path(__file__).resolve().parent.parent


def command(name: str, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command as root runs it from cron: no TTY, no $TS_ISR_CONFIG; ts_isr from this checkout
    whatever the folder it runs in."""
    env = {k: v for k, v in os.environ.items() if k != "TS_ISR_CONFIG"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", f"ts_isr.commands.{name}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_config_another_user_planted_in_the_working_folder_is_refused() -> None:
    """The issue's reproduction: nobody's ./threatstop.conf made root's loguploadclient run `id`."""
    with public_tmp() as public:
        shared = public / "shared"
        shared.mkdir()
        shared.chmod(0o777)  # a drop folder every user may write
        proof = public / "proof"  # in root's folder: only root can create it
        nobody_writes(shared / "device.log", "<134>%SEC-6-IPACCESSLOGP: list 101 denied\n")
        planted = nobody_writes(
            shared / "threatstop.conf",
            "device=192.0.2.1\nblock_list=x.threatstop.local\nusername=u\n"
            f"logfile={shared}/device.log\nstate_dir={shared}/state\ntsoutput={shared}/tsoutput.log\n"
            f"url=https://127.0.0.1:{free_port()}/upload\n"
            f'log_reopen_command=/bin/sh -c "id > {proof}"\n',
        )
        before = planted.read_bytes()

        done = command("loguploadclient", cwd=shared)

        assert not proof.exists(), "root ran the planted command"
        assert done.returncode == Exit.CONFIG, done.stdout + done.stderr
        assert done.stdout == (
            f"[ERROR] : config {planted} is refused: the folder {shared} on its way can be changed by other "
            f"users (every user can write it and it is not sticky); chmod o-w {shared}, "
            "or use a folder only root can change\n"
        )
        assert done.stderr == ""
        assert planted.read_bytes() == before and sorted(p.name for p in shared.iterdir()) == [
            "device.log",
            "threatstop.conf",
        ], "nothing read, rotated or created"

        shared.chmod(0o1777)  # sticky, as /tmp: root's files there are safe, nobody's are not
        done = command("upload_rules", "--print-policy", cwd=shared)
        assert done.returncode == Exit.CONFIG and done.stdout.count("\n") == 1
        assert done.stdout.startswith(
            f"[ERROR] : config {planted} is refused: it is owned by uid {NOBODY.pw_uid}, not by root"
        )
        assert f"check it, then: chown root {planted}" in done.stdout


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A config of root's (a policy server that is not there: no run here may get that far)."""
    config = tmp_path / "threatstop.conf"
    config.write_text(
        "device=192.0.2.1\nblock_list=x.threatstop.local\nusername=u\npassword=pw\n"
        f"dns_server=127.0.0.1\nport={free_port()}\ndns_timeout=0.5\n"
        f"tsoutput={tmp_path}/logs/tsoutput.log\nstate_dir={tmp_path}/var/state\n"
    )
    config.chmod(0o600)
    return tmp_path


def upload_rules(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return command("upload_rules", "--config", str(run_dir / "threatstop.conf"), *args, cwd=run_dir)


def test_a_tsoutput_link_in_a_folder_another_user_owns_is_refused(run_dir: Path) -> None:
    target = precious(run_dir)
    logs = run_dir / "logs"
    logs.mkdir()
    nobodys(logs)
    os.symlink(target, logs / "tsoutput.log")
    nobodys(logs / "tsoutput.log")
    done = upload_rules(run_dir)
    assert done.returncode == Exit.FAILED
    assert done.stdout.startswith(
        f"[ERROR] : log folder {logs} is refused: it is owned by uid {NOBODY.pw_uid}"
    )
    assert done.stdout.count("\n") == 1 and done.stderr == ""
    assert_untouched(target)


def test_a_tsoutput_link_is_never_appended_to(run_dir: Path) -> None:
    """Even in root's own folder (planted while it was open, say): the link is refused, not followed."""
    target = precious(run_dir)
    (run_dir / "logs").mkdir(mode=0o700)
    os.symlink(target, run_dir / "logs" / "tsoutput.log")
    done = upload_rules(run_dir)
    assert done.returncode == Exit.FAILED
    assert done.stdout == (
        f"[ERROR] : {run_dir}/logs/tsoutput.log is a symbolic link; refused "
        "(a planted link would send root's writes elsewhere): remove it\n"
    )
    assert_untouched(target)


def test_a_lock_link_never_truncates_its_target(run_dir: Path) -> None:
    target = precious(run_dir)
    (run_dir / "var" / "state").mkdir(mode=0o700, parents=True)
    os.symlink(target, run_dir / "var" / "state" / "upload_rules-192.0.2.1-22.lock")
    done = upload_rules(run_dir)
    assert done.returncode == Exit.FAILED
    assert done.stdout.startswith(
        f"[ERROR] : {run_dir}/var/state/upload_rules-192.0.2.1-22.lock is a symbolic link; refused"
    )
    assert done.stdout.count("\n") == 1
    assert_untouched(target)
    assert "Locking" not in (run_dir / "logs" / "tsoutput.log").read_text()


def plant_state(state: Path) -> dict[str, bytes]:
    """Ownership records that would make the tool remove the user's own members, and a last policy."""
    state.mkdir(parents=True)
    files = {
        "owned-192.0.2.1-22-threatstop-block.txt": b"203.0.113.1/32\n",
        "last_good_policy.txt": b"# ts_isr last good policy, fetched 2026-01-01T00:00:00+00:00\n",
    }
    for name, data in files.items():
        (state / name).write_bytes(data)
    return files


@pytest.mark.parametrize("args", [(), ("--dry-run",), ("--print-policy",)])
@pytest.mark.parametrize("loose", ["owned by nobody", "writable by all", "parent writable by all"])
def test_a_state_dir_another_user_can_change_is_refused_before_it_is_read(
    run_dir: Path, loose: str, args: tuple[str, ...]
) -> None:
    state = run_dir / "var" / "state"
    files = plant_state(state)
    if loose == "owned by nobody":
        nobodys(state)
        reason = f"state_dir {state} is refused: it is owned by uid {NOBODY.pw_uid}"
    elif loose == "writable by all":
        state.chmod(0o777)
        reason = f"state_dir {state} is refused: every user can write it; chmod o-w {state}"
    else:
        state.parent.chmod(0o777)
        reason = f"state_dir {state} is refused: the folder {state.parent} on its way can be changed by"
    done = upload_rules(run_dir, *args)
    assert done.returncode == Exit.FAILED, done.stdout
    [line] = done.stdout.splitlines()
    assert line.startswith(f"[ERROR] : {reason}"), line
    assert {p.name: p.read_bytes() for p in state.iterdir()} == files, "nothing read, written or removed"
    log = (run_dir / "logs" / "tsoutput.log").read_text()
    assert "Locking" not in log and "DNS" not in log


def test_the_last_good_policy_is_neither_read_from_nor_written_to_a_state_dir_others_can_change(
    tmp_path: Path,
) -> None:
    """tsadmin reads it through the same module: the check lives where the file is read and written."""
    state = tmp_path / "state"
    files = plant_state(state)
    nobodys(state)
    with pytest.raises(UnsafePath, match=f"state_dir {state} is refused: it is owned by uid {NOBODY.pw_uid}"):
        load_last_good(state)
    with pytest.raises(UnsafePath, match="refused"):
        save_last_good(state, Policy((), ()))
    assert {p.name: p.read_bytes() for p in state.iterdir()} == files
    os.chown(state, 0, 0)
    (state / "last_good_policy.txt").unlink()
    os.symlink(precious(tmp_path), state / "last_good_policy.txt")
    with pytest.raises(UnsafePath, match="is a symbolic link; refused"):
        load_last_good(state)


def test_the_host_tools_tsadmin_runs_get_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """ipset, iptables, nft and the syslog reload run with the child environment only: the web
    automation key in TS_AUTO_KEY stays with tsadmin."""
    from ts_isr.linux.system import run_tool

    monkeypatch.setenv("TS_AUTO_KEY", "auto-key-secret")
    shown = run_tool(["env"])
    assert "auto-key-secret" not in shown and "PATH=" in shown


def test_every_program_the_tools_start_gets_the_child_environment() -> None:
    """Each place the package starts a program passes ``env=`` (:func:`~ts_isr.tools.child_env`), so
    no secret in the environment (TS_PASSWORD, TS_ENABLE_PW, TS_AUTO_KEY) reaches a child.  The lab
    and the demo start the project's own programs, with the environment they were given."""
    package = ROOT / "ts_isr"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if "lab" in path.relative_to(package).parts or path.name == "demo.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            starts = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "subprocess"
                and node.func.attr in {"run", "Popen", "call", "check_call", "check_output"}
            )
            if starts and not any(keyword.arg == "env" for keyword in node.keywords):
                missing.append(f"{path.relative_to(package)}:{node.lineno}")
    assert missing == [], missing
