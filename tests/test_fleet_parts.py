"""The fleet's inventory: real Nornir SimpleInventory files, inheritance, bad hosts, shards, pace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import ruamel.yaml
from nornir.core.task import Result, Task

from ts_isr.config import read_values
from ts_isr.errors import ConfigError
from ts_isr.fleet.inventory import fleet_devices, unique_devices
from ts_isr.fleet.load import open_inventory
from ts_isr.fleet.pacer import Pacer
from ts_isr.fleet.report import Outcome, progress, summary
from ts_isr.fleet.run import outcome_of
from ts_isr.fleet.shard import in_shard, parse_shard

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "fleet-example"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, folder)
    conf = folder / "threatstop.conf"
    conf.write_text("block_list=policy.1234.threatstop.local\nallow_list=allow.1234.threatstop.local\n")
    conf.chmod(0o600)
    return folder


def load(folder: Path):
    nornir = open_inventory(folder / "nornir.yaml", workers=3)
    shared = read_values(folder / "threatstop.conf")
    return fleet_devices(nornir.inventory.hosts.values(), shared, folder / "threatstop.conf")


def test_the_shipped_example_loads_from_any_working_directory(example: Path, monkeypatch) -> None:
    monkeypatch.chdir("/")
    devices, bad = load(example)
    assert bad == []
    by_name = {device.name: device.config for device in devices}
    paris, lyon, asa = by_name["branch-paris"], by_name["branch-lyon"], by_name["hq-asa"]
    assert (str(paris.device), paris.ssh_port, paris.personality) == ("192.0.2.11", 22, "ios")
    assert (paris.username, paris.password, paris.enable_pw) == (
        "tsadmin",
        "branch-password",
        "branch-enable",
    )
    assert paris.write_memory and not paris.exclusive_groups
    assert (lyon.ssh_port, lyon.object_group_block, lyon.object_group_allow) == (
        2222,
        "ts-block-lyon",
        "threatstop-allow",
    )
    assert (asa.personality, asa.enable_pw, asa.exclusive_groups) == ("asa", "asa-enable", True)
    assert (asa.block_list, asa.max_policy_size) == ("hq-policy.1234.threatstop.local", 60000)
    assert paris.block_list == "policy.1234.threatstop.local"
    assert unique_devices(devices) == (devices, [])


def test_a_bad_host_is_one_line_and_the_others_still_run(example: Path) -> None:
    hosts = example / "hosts.yaml"
    hosts.write_text(
        hosts.read_text()
        + "bad-name:\n  hostname: 192.0.2.99\n  groups: [branches]\n"
        + "  data:\n    object_group_block: 'has space'\n"
        + "bad-platform:\n  hostname: 192.0.2.98\n  platform: junos\n  password: x\n"
        + "sneaky:\n  hostname: 192.0.2.97\n  groups: [branches]\n  data:\n    state_dir: /tmp/x\n"
    )
    devices, bad = load(example)
    assert sorted(d.name for d in devices) == ["branch-lyon", "branch-paris", "hq-asa"]
    reasons = {b.name: b.reason for b in bad}
    assert reasons["bad-name"].startswith("host bad-name: object_group_block:")
    assert "platform: 'junos'" in reasons["bad-platform"]
    assert "state_dir: is set for the whole fleet" in reasons["sneaky"]


def test_every_host_for_one_device_is_refused_and_the_others_kept(example: Path) -> None:
    """Same address and port, whatever the names: all of them refused, each naming the others."""
    hosts = example / "hosts.yaml"
    hosts.write_text(
        hosts.read_text()
        + "paris-again:\n  hostname: 192.0.2.11\n  groups: [branches]\n"
        + "paris-third:\n  hostname: 192.0.2.11\n  port: 22\n  groups: [branches]\n"
        + "paris-other-port:\n  hostname: 192.0.2.11\n  port: 2200\n  groups: [branches]\n"
    )
    devices, bad = unique_devices(load(example)[0])
    assert sorted(d.name for d in devices) == ["branch-lyon", "hq-asa", "paris-other-port"]
    reasons = {b.name: b.reason for b in bad}
    assert reasons == {
        name: f"host {name}: is the same device 192.0.2.11:22 as host {others}; "
        "keep one of them in the inventory"
        for name, others in (
            ("branch-paris", "paris-again, paris-third"),
            ("paris-again", "branch-paris, paris-third"),
            ("paris-third", "branch-paris, paris-again"),
        )
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("inventory: [unclosed", "cannot be loaded"),
        ("inventory:\n  plugin: SimpleInventory\n  options:\n    host_file: missing.yaml\n", "missing.yaml"),
    ],
)
def test_a_broken_inventory_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "nornir.yaml").write_text(text)
    with pytest.raises(ConfigError, match=problem) as raised:
        open_inventory(tmp_path / "nornir.yaml", workers=1)
    assert "\n" not in str(raised.value)


def test_shards_take_every_host_exactly_once() -> None:
    names = [f"router-{n}" for n in range(500)]
    for count in (1, 2, 3, 7):
        taken = [name for k in range(1, count + 1) for name in names if in_shard(name, (k, count))]
        assert sorted(taken) == sorted(names)
        sizes = [sum(in_shard(name, (k, count)) for name in names) for k in range(1, count + 1)]
        assert min(sizes) > 500 / count / 2, sizes


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "1/0", "-1/2"])
def test_a_bad_shard_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="give K/N"):
        parse_shard(text)


def test_the_pacer_spaces_logins_across_threads() -> None:
    now = [0.0]
    slept: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            slept.append(seconds)

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    threads = [threading.Thread(target=pacer.wait) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(slept) == [0.25 * n for n in range(1, 8)]


def test_the_summary_puts_failures_first_and_names_every_one() -> None:
    outcomes = [
        Outcome("r2", "changed", added=5, removed=1, seconds=3.21),
        Outcome(
            "r10", "failed", seconds=30.0, reason="authentication failed for user admin on 192.0.2.10:22"
        ),
        Outcome("r1", "unchanged", seconds=0.5),
        Outcome("r3", "failed", reason="cannot reach 192.0.2.3:22 (unreachable)"),
    ]
    assert summary(outcomes) == [
        "host  result     added  removed  seconds  reason",
        "r10   failed     0      0        30.0     authentication failed for user admin on 192.0.2.10:22",
        "r3    failed     0      0        0.0      cannot reach 192.0.2.3:22 (unreachable)",
        "r1    unchanged  0      0        0.5",
        "r2    changed    5      1        3.2",
        "4 devices: 1 changed, 1 unchanged, 2 failed (r10, r3)",
    ]
    assert progress(3, 20, 1) == "3 of 20 devices done, 1 failed"


def test_the_summary_counts_ipv6_apart_where_a_device_took_some() -> None:
    table = summary(
        [Outcome("asa", "changed", added=12, removed=2, added_ipv6=5, removed_ipv6=0, seconds=1.0)]
    )
    assert table[1].split(None, 6)[:6] == ["asa", "changed", "12", "(7", "IPv4,", "5"]
    assert "12 (7 IPv4, 5 IPv6)" in table[1] and "  2  " in table[1]


def test_an_inventory_file_another_user_can_change_is_refused(example: Path) -> None:
    """The inventory holds the devices' passwords and names what root logs into: trusted as the config."""
    os.chown(example / "hosts.yaml", 65534, 65534)
    with pytest.raises(
        ConfigError, match=r"inventory host_file \S+hosts\.yaml is refused: it is owned by uid 65534"
    ):
        open_inventory(example / "nornir.yaml", workers=1)
    os.chown(example / "hosts.yaml", 0, 0)
    os.chmod(example / "nornir.yaml", 0o666)
    with pytest.raises(ConfigError, match="every user can write it"):
        open_inventory(example / "nornir.yaml", workers=1)


def test_simple_inventorys_default_files_are_read_beside_the_config_and_trusted(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nornir.yaml naming no file: SimpleInventory's hosts.yaml and the rest come from its folder (not
    cron's), under the same trust as named ones; a missing groups.yaml is no error, as in Nornir."""
    (example / "nornir.yaml").write_text("inventory:\n  plugin: SimpleInventory\n")
    (example / "defaults.yaml").unlink()
    monkeypatch.chdir(tmp_path)  # no hosts.yaml here
    named = ruamel.yaml.YAML(typ="safe").load((example / "hosts.yaml").read_text())
    assert sorted(open_inventory(example / "nornir.yaml", workers=1).inventory.hosts) == sorted(named)
    os.chown(example / "hosts.yaml", 65534, 65534)
    with pytest.raises(ConfigError, match=r"inventory host_file \S+hosts\.yaml is refused"):
        open_inventory(example / "nornir.yaml", workers=1)


def test_a_task_that_raised_is_its_hosts_failure_and_the_others_stand(example: Path) -> None:
    """Nornir keeps a traceback string, not an Outcome, for a task that raised: the collection makes
    it that host's one-line failure (as a host with no result at all), so the summary is kept."""
    nornir = open_inventory(example / "nornir.yaml", workers=3)

    def task(task: Task) -> Result:
        if task.host.name == "hq-asa":
            raise RuntimeError("boom\nsecond line")
        return Result(host=task.host, result=Outcome(task.host.name, "unchanged"))

    results = nornir.run(task=task)
    outcomes = {name: outcome_of(name, results.get(name)) for name in [*nornir.inventory.hosts, "lost"]}
    assert outcomes["branch-paris"] == Outcome("branch-paris", "unchanged")
    assert outcomes["hq-asa"] == Outcome(
        "hq-asa",
        "failed",
        reason="internal error: RuntimeError: boom\\nsecond line; report it with the log",
        kind="internal",
    )
    assert outcomes["lost"].failed and "gave no result" in outcomes["lost"].reason


def test_nornir_keeps_a_raised_tasks_traceback_off_stderr(example: Path) -> None:
    """Cron mails stderr: Nornir's record of a failed task (a whole traceback) must not reach it
    through Python's last-resort handler; the run logs the failure itself, in one line."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom ts_isr.fleet.load import open_inventory\n"
        "def task(task): raise RuntimeError('boom')\n"
        "print(sorted(open_inventory(Path(sys.argv[1]), workers=1).run(task=task).failed_hosts))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(example / "nornir.yaml")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert done.stdout == "['branch-lyon', 'branch-paris', 'hq-asa']\n" and done.stderr == ""
