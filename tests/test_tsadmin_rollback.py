"""tsadmin add is whole or nothing (issue 15): the preflight refuses before any change, a failure at any
later step puts the host back as it was, and hosts without cron or with a stopped syslog daemon are met.

Everything runs in network namespaces with real ipset, iptables and Knot; the
host's files live under the test's ``--root`` (the crontab is ``root/crontab``).
A step is made to fail by a directory standing where its file goes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostroot import shape_host
from tests.support.tools import require_tool
from tests.support.tsadmin_lab import BLOCKED_HOST, TSADMIN, Lab, open_lab
from tests.support.users import NOBODY
from ts_isr.errors import ConfigError, DeviceError
from ts_isr.linux.iptables_backend import check_tools

pytestmark = pytest.mark.root

# Written by every run, refused or not, before anything else: not part of the host's state.
RUN_FILES = ("opt/threatstop/tsadmin.lock", "var/log/threatstop/tsadmin.log")
# What every run leaves for monitoring, failed or not: the run's record (see ts_isr.runrecord).
RUN_RECORDS = "last-run-tsadmin_"
TIMER_FILES = [
    f"etc/systemd/system/threatstop-{command}.{kind}"
    for command in ("update", "logs")
    for kind in ("service", "timer")
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with open_lab(tmp_path) as opened:
        yield opened


def tree(root: Path) -> dict[str, tuple[bytes, int] | str]:
    """Every file (content and mode) and directory under the root, tsadmin's own run files left out."""
    found: dict[str, tuple[bytes, int] | str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(run == relative or run.startswith(relative + "/") for run in RUN_FILES):
            continue
        if path.name.startswith(RUN_RECORDS):
            continue
        if path.is_symlink():
            found[relative] = f"link to {path.readlink()}"
        else:
            found[relative] = (path.read_bytes(), path.stat().st_mode) if path.is_file() else "directory"
    return found


def host_state(lab: Lab) -> tuple[tuple[str, str, str], dict[str, tuple[bytes, int] | str]]:
    return lab.state(), tree(lab.root)


def without_cron(lab: Lab) -> None:
    (lab.root / "run/crond.pid").unlink()


STEPS = {
    "backups": ("opt/threatstop/pre-threatstop_ip6tables", ()),  # a link to itself: backups skip a directory
    "boot state": ("opt/threatstop/threatstop_ipset.save", ()),
    "br_netfilter": ("etc/modules-load.d/threatstop.conf", ("--load_br_netfilter=y",)),
    "syslog-ng": ("etc/syslog-ng/conf.d/threatstop-kernel.conf", ()),
    "logrotate": ("etc/logrotate.d/threatstop-tsadmin", ()),
    "crontab": ("crontab", ()),
    "timers": ("etc/systemd/system/threatstop-logs.timer", ()),
    "boot unit": ("etc/systemd/system/threatstop.service", ()),
}


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_the_host_as_it_was(lab: Lab, step: str) -> None:
    in_the_way, extra = STEPS[step]
    shape_host(lab.root, syslog="syslog-ng", systemd=step == "timers")
    if step == "timers":
        without_cron(lab)
    blocker = lab.root / in_the_way
    if step == "backups":
        blocker.parent.mkdir(parents=True)
        blocker.symlink_to(blocker.name)
    else:
        (blocker / "in-the-way").mkdir(parents=True)
    before = host_state(lab)
    failed = lab.add(*extra)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    errors = [line for line in failed.stdout.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "was undone" in errors[0], failed.stdout
    assert host_state(lab) == before
    assert lab.pair.reachable(BLOCKED_HOST)


def test_a_failed_second_add_puts_the_first_installation_back(lab: Lab) -> None:
    assert lab.add().returncode == 4
    (lab.root / "etc/modules-load.d/threatstop.conf/in-the-way").mkdir(parents=True)
    installed = host_state(lab)
    failed = lab.add("--allow_action=ACCEPT", "--load_br_netfilter=y")
    assert failed.returncode == 1 and "was undone" in failed.stdout, failed.stdout + failed.stderr
    assert host_state(lab) == installed, (
        "the chain (RETURN), the sets and the config as the first add left them"
    )
    assert not lab.pair.reachable(BLOCKED_HOST)


@pytest.mark.parametrize("change", ["--tsprefix", "--firewall=nftables"])
def test_an_add_that_could_not_retire_the_installation_before_is_refused_before_anything(
    lab: Lab, change: str
) -> None:
    """The old chain is removed once the new one is on top; a host rule jumping to it would stop that
    removal half-way, both installations left in place: so it is refused first."""
    require_tool("nft")
    assert lab.add().returncode == 4
    lab.pair.run(["iptables", "-N", "HOSTCHAIN"])
    lab.pair.run(["iptables", "-A", "HOSTCHAIN", "-j", lab.prefix])
    installed = host_state(lab)
    refused = lab.add(f"--tsprefix={lab.prefix}N" if change == "--tsprefix" else change)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert (
        refused.stdout.count("[ERROR]") == 1
        and f"a rule of the host jumping to {lab.prefix}" in refused.stdout
    )
    assert host_state(lab) == installed


def test_no_cron_and_no_systemd_is_refused_before_anything(lab: Lab) -> None:
    without_cron(lab)
    before = host_state(lab)
    refused = lab.add()
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stdout.count("[ERROR]") == 1 and "apt-get install cron" in refused.stdout
    assert host_state(lab) == before


def test_a_tsadmin_another_user_can_change_is_refused_before_anything(lab: Lab, tmp_path: Path) -> None:
    """Cron and the boot unit run this interpreter and this script as root: a launcher in another
    user's folder would hand that user root every two hours."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    launcher = theirs / "tsadmin"
    launcher.write_text(
        f"import sys\nsys.path.insert(0, {str(TSADMIN.parent.parent)!r})\n"
        "from ts_isr.commands.tsadmin import main\nsys.exit(main())\n"
    )
    for path in (theirs, launcher):
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    before = host_state(lab)
    refused = lab.add(script=launcher)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stdout.count("[ERROR]") == 1, refused.stdout
    script = f"the tsadmin script that cron and the boot unit would run, {launcher} is refused"
    assert script in refused.stdout
    assert f"the folder {theirs} on its way can be changed by other users" in refused.stdout
    assert host_state(lab) == before


def test_a_package_folder_another_user_can_change_is_refused_and_a_shell_pythonpath_is_not(
    lab: Lab, tmp_path: Path
) -> None:
    """Root imports every module of the package from cron: a folder of it anyone can write (a
    ``__pycache__`` made 0777, say) would let them add one.  The PYTHONPATH of the shell that ran
    ``add`` is not cron's, so it is no reason to refuse."""
    checkout = tmp_path / "checkout"
    shutil.copytree(
        TSADMIN.parent.parent / "ts_isr", checkout / "ts_isr", ignore=shutil.ignore_patterns("*.pyc")
    )
    for shipped in ("bin", "systemd", "logrotate", "syslog-ng"):  # the code and the templates it installs
        shutil.copytree(TSADMIN.parent.parent / shipped, checkout / shipped)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY.pw_uid, NOBODY.pw_gid)
    open_folder = checkout / "ts_isr" / "linux" / "__pycache__"
    open_folder.mkdir(exist_ok=True)
    open_folder.chmod(0o777)
    before = host_state(lab)
    refused = lab.add(script=checkout / "bin" / "tsadmin", pythonpath=theirs)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stdout.count("[ERROR]") == 1, refused.stdout
    assert f"tsadmin's package folder {open_folder} is refused: every user can write it" in refused.stdout
    assert host_state(lab) == before
    open_folder.chmod(0o755)
    assert lab.add(script=checkout / "bin" / "tsadmin", pythonpath=theirs).returncode == 4


def test_a_stopped_syslog_daemon_is_a_warning_and_remove_does_not_stop_at_it(lab: Lab) -> None:
    shape_host(lab.root, syslog="syslog-ng", syslog_running=False)
    before = lab.state()
    added = lab.add()
    assert added.returncode == 4, added.stdout + added.stderr
    logged = (lab.root / "var/log/threatstop/tsadmin.log").read_text().splitlines()
    warning = next(line for line in logged if "[WARN ]" in line and "syslog-ng" in line)
    assert "not running" in warning and "dmesg" in warning
    for installed in ("etc/syslog-ng/conf.d/threatstop-kernel.conf", "etc/systemd/system/threatstop.service"):
        assert (lab.root / installed).exists(), installed
    assert "tsadmin update" in (lab.root / "crontab").read_text()
    removed = lab.tsadmin("remove", "--silent")
    assert removed.returncode == 4, removed.stdout + removed.stderr
    assert lab.state() == before
    assert not (lab.root / "etc/syslog-ng/conf.d/threatstop-kernel.conf").exists()
    assert not (lab.root / "etc/systemd/system/threatstop.service").exists()


def test_a_host_without_cron_gets_systemd_timers_and_remove_takes_them_out(lab: Lab) -> None:
    without_cron(lab)
    shape_host(lab.root, cron=False, systemd=True)
    added = lab.add()
    assert added.returncode == 4, added.stdout + added.stderr
    assert not (lab.root / "crontab").exists()
    units = [lab.root / name for name in TIMER_FILES]
    verified = subprocess.run(
        [require_tool("systemd-analyze"), "verify", *map(str, units)], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    update_timer = (lab.root / "etc/systemd/system/threatstop-update.timer").read_text()
    assert "OnCalendar=*-*-* 00/2:23:00" in update_timer
    assert "OnCalendar=*-*-* *:07:00" in (lab.root / "etc/systemd/system/threatstop-logs.timer").read_text()
    service = (lab.root / "etc/systemd/system/threatstop-update.service").read_text()
    assert " update --root " in service and str(lab.root) in service

    # cron installed later: the next add moves the jobs to it and takes the timers out.
    shape_host(lab.root)
    moved = lab.add()
    assert moved.returncode == 4, moved.stdout + moved.stderr
    assert "tsadmin update" in (lab.root / "crontab").read_text()
    assert not any(unit.exists() for unit in units)

    without_cron(lab)
    assert lab.add().returncode == 4
    removed = lab.tsadmin("remove", "--silent")
    assert removed.returncode == 4, removed.stdout + removed.stderr
    assert not any(unit.exists() for unit in units)
    assert "tsadmin" not in (lab.root / "crontab").read_text()


def test_skip_checkpolicy_skips_the_check_not_the_first_update(lab: Lab) -> None:
    """The seed: 'the setup will attempt to update / download policy ... it will retry again'."""
    added = lab.add("--skip_checkpolicy", "--skip_checkvalidip")
    assert added.returncode == 4, added.stdout + added.stderr
    assert not lab.pair.reachable(BLOCKED_HOST), "the policy was fetched at once"


def test_skip_checkpolicy_with_the_policy_out_of_reach_installs_and_says_when_it_retries(lab: Lab) -> None:
    lab.knot.stop()
    added = lab.add("--skip_checkpolicy", "--skip_checkvalidip")
    assert added.returncode == 4, added.stdout + added.stderr
    assert "[ERROR]" not in added.stdout
    logged = (lab.root / "var/log/threatstop/tsadmin.log").read_text()
    assert "first policy update failed" in logged and "cron job retries it" in logged
    assert f"{lab.prefix}blockaddr" in lab.pair.run(["ipset", "list", "-n"]).stdout
    assert "tsadmin update" in (lab.root / "crontab").read_text()


def test_missing_firewall_tools_and_kernel_support_are_one_line_each() -> None:
    with pytest.raises(ConfigError) as missing:
        check_tools(lambda tool: None if tool in ("ipset", "ip6tables-save") else f"/sbin/{tool}")
    message = str(missing.value)
    assert "ipset, ip6tables-save not installed" in message and "apt-get install ipset iptables" in message
    assert "\n" not in message

    def refuses(argv: list[str]) -> str:
        raise DeviceError("ipset list failed: Kernel error received: Operation not supported")

    with pytest.raises(DeviceError) as kernel:
        check_tools(lambda tool: f"/sbin/{tool}", refuses)
    assert "modprobe ip_set" in str(kernel.value) and "nothing was changed" in str(kernel.value)


def nft_state(lab: Lab) -> str:
    return lab.pair.run(["nft", "-t", "list", "ruleset"]).stdout


def test_the_nftables_backend_is_rolled_back_too(lab: Lab) -> None:
    """A first install removed, then a re-add put back (its table, rules and sets) when the crontab fails."""
    require_tool("nft")
    (lab.root / "crontab" / "in-the-way").mkdir(parents=True)
    before = (host_state(lab), nft_state(lab))
    failed = lab.add("--firewall=nftables")
    assert failed.returncode == 1 and "was undone" in failed.stdout, failed.stdout + failed.stderr
    assert (host_state(lab), nft_state(lab)) == before
    (lab.root / "crontab" / "in-the-way").rmdir()
    (lab.root / "crontab").rmdir()
    assert lab.add("--firewall=nftables").returncode == 4
    (lab.root / "etc/modules-load.d/threatstop.conf/in-the-way").mkdir(parents=True)
    installed = (host_state(lab), nft_state(lab))
    failed = lab.add("--firewall=nftables", "--allow_action=ACCEPT", "--load_br_netfilter=y")
    assert failed.returncode == 1 and "was undone" in failed.stdout, failed.stdout + failed.stderr
    assert (host_state(lab), nft_state(lab)) == installed
    assert not lab.pair.reachable(BLOCKED_HOST)
