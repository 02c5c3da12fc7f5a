"""The lab's pure command interpreter: modes, prompts, errors, member lines and show output."""

from __future__ import annotations

import pytest
from ntc_templates.parse import parse_output

from ts_isr.lab.cli import Session
from ts_isr.lab.model import ASA, IOS, DeviceState, Mode, Profile
from ts_isr.lab.terminal import edit_line, take_lines
from ts_isr.targets.cisco.ios import IosDialect

SECRET = "s3cret"

# Captures from real devices, from ntc-templates' test fixtures (tests/cisco_ios/show_object-group/
# cisco_ios_show_object-group.raw and tests/cisco_asa/show_object-group_network/
# cisco_asa_show_object-group_network.raw), network groups only: the golden samples of the format.
IOS_CAPTURE = """\
Network object group NNNN
Network object group TEST_NET_OGR
 Description ###TEST NETWORK OGR###
 any
 host 1.1.1.1
 range 2.2.2.2 3.3.3.3
 group-object NNNN
 1.1.1.0 255.255.255.0
Network object group XXXX
Network object group YYYY
"""
ASA_CAPTURE = """\
object-group network NETWORK-10.42.89.0_24
 network-object 10.142.89.0 255.255.255.0
object-group network network-10.0.0.0_8
 network-object 10.0.0.0 255.0.0.0
object-group network SITE-A
 network-object host 10.1.1.22
object-group network Lab
 network-object 10.143.185.10 255.255.255.255
 network-object 10.143.185.15 255.255.255.255
object-group network Dev
 group-object dev_web-servers
 network-object object DEV_DB
"""


def session(platform: str = IOS, enabled: bool = True, **profile) -> Session:
    cli = Session(Profile(platform=platform, secret=SECRET, **profile), DeviceState())
    if enabled:
        cli.handle("enable")
        cli.handle(SECRET)
    return cli


def run(cli: Session, *lines: str) -> list[str]:
    """Every line's output, flattened (what the device prints between echo and prompt)."""
    return [text for line in lines for text in cli.handle(line).lines]


def configure(cli: Session, group: str, *members: str) -> list[str]:
    return run(cli, "configure terminal", f"object-group network {group}", *members, "end")


def test_prompts_follow_the_modes_on_ios():
    cli = session(enabled=False)
    assert cli.prompt() == "ISR4331>"
    assert cli.handle("enable").lines == [] and cli.prompt() == "Password: "
    reply = cli.handle(SECRET)
    assert reply.echo is False and cli.prompt() == "ISR4331#"
    assert run(cli, "conf t") == ["Enter configuration commands, one per line.  End with CNTL/Z."]
    assert cli.prompt() == "ISR4331(config)#"
    run(cli, "object-group network TS")
    assert cli.prompt() == "ISR4331(config-network-group)#"
    run(cli, "exit")
    assert cli.prompt() == "ISR4331(config)#"
    run(cli, "end")
    assert cli.mode is Mode.EXEC
    assert cli.handle("exit").close is True


def test_prompts_follow_the_modes_on_asa():
    cli = session(ASA, enabled=False)
    assert cli.prompt() == "ASA5506> "
    assert run(cli, "show curpriv")[1] == "Current privilege level : 1"
    run(cli, "enable", SECRET)
    assert cli.prompt() == "ASA5506# "
    run(cli, "configure terminal", "object-group network TS")
    assert cli.prompt() == "ASA5506(config-network-object-group)# "
    assert run(cli, "terminal width 511") == []  # netmiko sends this in configuration mode


def test_wrong_enable_secret_is_refused_as_each_platform_does():
    ios = session(enabled=False)
    assert run(ios, "enable", "nope") == ["% Access denied", ""]
    assert ios.mode is Mode.USER
    asa = session(ASA, enabled=False)
    assert run(asa, "enable", "a", "b") == ["Invalid password", "Invalid password"]
    assert asa.mode is Mode.PASSWORD
    assert run(asa, "c") == ["Invalid password", "Access denied."]
    assert asa.mode is Mode.USER


def test_abbreviations_ambiguity_and_unknown_commands():
    cli = session()
    assert run(cli, "co") == ['% Ambiguous command:  "co"']
    assert run(cli, "frobnicate") == [
        "% Unknown command or computer name, or unable to find computer address"
    ]
    assert run(cli, "wr") == ["Building configuration...", "[OK]"]
    assert run(cli, "conf t") and cli.mode is Mode.CONFIG
    assert run(cli, "object-group") == ["% Incomplete command.", ""]


def test_invalid_input_caret_points_at_the_offending_character():
    cli = session()
    run(cli, "configure terminal", "object-group network TS")
    prompt = cli.prompt()
    assert run(cli, "hots 192.0.2.1") == [
        " " * (len(prompt) + 2) + "^",
        "% Invalid input detected at '^' marker.",
        "",
    ]
    assert run(cli, "host 192.0.2.300")[0] == " " * (len(prompt) + 5) + "^"
    assert run(cli, "host 192.0.2.1 extra")[0] == " " * (len(prompt) + 15) + "^"
    assert run(cli, "host") == ["% Incomplete command.", ""]
    asa = session(ASA)
    run(asa, "configure terminal")
    assert run(asa, "object-grup network X")[1] == "ERROR: % Invalid input detected at '^' marker."
    assert run(asa, "object-group network") == ["ERROR: % Incomplete command"]


def test_ios_members_their_no_forms_and_order():
    cli = session()
    output = configure(
        cli,
        "TS",
        "host 192.0.2.1",
        "host 192.0.2.1",  # IOS accepts a duplicate silently
        "192.0.2.77 255.255.255.0",  # host bits cleared
        "range 198.51.100.1 198.51.100.9",
        "description first",
        "description ThreatSTOP blocks",
        "group-object OTHER",
        "any",
        "no any",
        "no host 203.0.113.1",  # absent: silent
    )
    assert output == ["Enter configuration commands, one per line.  End with CNTL/Z."]
    assert cli.state.running["TS"] == dict.fromkeys(
        [
            "description ThreatSTOP blocks",
            "host 192.0.2.1",
            "192.0.2.0 255.255.255.0",
            "range 198.51.100.1 198.51.100.9",
            "group-object OTHER",
        ]
    )
    configure(cli, "TS", "no 192.0.2.0 255.255.255.0", "no range 198.51.100.1 198.51.100.9", "no description")
    assert list(cli.state.running["TS"]) == ["host 192.0.2.1", "group-object OTHER"]
    assert run(cli, "configure terminal", "object-group network TS", "255.0.0.1 1.2.3.4")[1].endswith("^")


def test_asa_members_warnings_and_pairing():
    cli = session(ASA)
    output = configure(
        cli,
        "TS",
        "network-object host 192.0.2.1",
        "network-object host 192.0.2.1",
        "network-object 192.0.2.1 255.255.255.255",  # the ASA keeps this apart from `host`
        "network-object 192.0.2.5 255.255.255.0",
        "no network-object host 203.0.113.1",
    )
    assert output == [
        "WARNING: Adding obj (192.0.2.1) to grp (TS) failed; object already exists",
        "ERROR: IP address,mask doesn't pair",
        "WARNING: Deleting obj (203.0.113.1) from grp (TS) failed; object does not exist in this group",
    ]
    assert list(cli.state.running["TS"]) == [
        "network-object host 192.0.2.1",
        "network-object 192.0.2.1 255.255.255.255",
    ]


def test_group_mode_falls_through_to_global_commands():
    cli = session()
    configure(
        cli, "A", "host 192.0.2.1", "object-group network B", "host 192.0.2.2", "no object-group network A"
    )
    assert cli.state.running == {"B": {"host 192.0.2.2": None}}
    assert run(cli, "configure terminal", "no object-group network A") == [
        "Enter configuration commands, one per line.  End with CNTL/Z.",
        "% object-group A does not exist",
        "",
    ]


def test_running_and_startup_are_distinct_until_saved():
    cli = session()
    configure(cli, "TS", "host 192.0.2.1")
    assert cli.state.startup == {}
    assert "object-group network TS" not in run(cli, "show startup-config")
    run(cli, "copy running-config startup-config")
    assert cli.prompt() == "Destination filename [startup-config]? "
    assert run(cli, "") == ["Building configuration...", "[OK]"]
    assert cli.state.snapshot()["startup"] == {"TS": ["host 192.0.2.1"]}
    assert DeviceState.from_snapshot(cli.state.snapshot()).snapshot() == cli.state.snapshot()


def test_show_commands_and_filters():
    cli = session()
    configure(cli, "A", "host 192.0.2.1")
    configure(cli, "B", "range 192.0.2.5 192.0.2.6")
    assert run(cli, "show object-group name B") == ["Network object group B", " range 192.0.2.5 192.0.2.6"]
    assert run(cli, "show object-group B") == ["Network object group B", " range 192.0.2.5 192.0.2.6"]
    assert run(cli, "show object-group name MISSING") == []
    assert run(cli, "sh run | sec object-group") == [
        "object-group network A",
        " host 192.0.2.1",
        "object-group network B",
        " range 192.0.2.5 192.0.2.6",
    ]
    assert run(cli, "show running-config | include 192.0.2.1") == [" host 192.0.2.1"]
    assert run(cli, "do show version")[1] == "% Invalid input detected at '^' marker."  # `do`: config only
    assert run(cli, "configure terminal", "do show object-group name A")[1:] == [
        "Network object group A",
        " host 192.0.2.1",
    ]
    run(cli, "end")
    assert run(cli, "show version")[0] == "Cisco IOS XE Software, Version 16.09.04"
    old = session(old_ios=True)
    configure(old, "B", "host 192.0.2.9")
    assert run(old, "show object-group name B")[1] == "% Invalid input detected at '^' marker."
    assert run(old, "show object-group B") == ["Network object group B", " host 192.0.2.9"]
    assert "Version 15.0(1)M4" in run(old, "show version")[0]


def test_asa_show_running_config_object_group():
    cli = session(ASA)
    configure(cli, "A", "network-object host 192.0.2.1")
    configure(cli, "B", "network-object 192.0.2.0 255.255.255.0")
    assert run(cli, "show running-config object-group id B") == [
        "object-group network B",
        " network-object 192.0.2.0 255.255.255.0",
    ]
    assert run(cli, "show running-config object-group id MISSING") == []
    assert len(run(cli, "show running-config object-group network")) == 4
    assert run(cli, "write memory")[-1] == "[OK]"
    assert run(cli, "show version")[1].startswith("Cisco Adaptive Security Appliance Software Version")


def test_max_members_refuses_further_members():
    cli = session(max_members=1)
    assert configure(cli, "TS", "description kept", "host 192.0.2.1", "host 192.0.2.2")[1:] == [
        "% Object-group TS has reached the maximum of 1 entries",
        "",
    ]
    assert list(cli.state.running["TS"]) == ["description kept", "host 192.0.2.1"]


def test_max_members_does_not_count_a_description_added_later():
    cli = session(max_members=2)
    configure(cli, "TS", "host 192.0.2.1", "description late", "host 192.0.2.2", "host 192.0.2.3")
    assert list(cli.state.running["TS"]) == ["description late", "host 192.0.2.1", "host 192.0.2.2"]


def test_odd_prompt_is_rom_monitor():
    cli = session(enabled=False, odd_prompt=True)
    assert cli.prompt() == "rommon 1 > "
    assert run(cli, "enable") == ['monitor: command "enable" not found']


def test_ios_rendering_matches_a_real_capture_and_parses():
    cli = session()
    for name in ("NNNN", "TEST_NET_OGR", "XXXX", "YYYY"):
        run(cli, "configure terminal", f"object-group network {name}", "end")
    configure(
        cli,
        "TEST_NET_OGR",
        "description ###TEST NETWORK OGR###",
        "any",
        "host 1.1.1.1",
        "range 2.2.2.2 3.3.3.3",
        "group-object NNNN",
        "1.1.1.0 255.255.255.0",
    )
    shown = "\n".join(run(cli, "show object-group")) + "\n"
    assert shown == IOS_CAPTURE
    parsed = parse_output(platform="cisco_ios", command="show object-group", data=shown)
    assert {row["name"] for row in parsed} == {"NNNN", "TEST_NET_OGR", "XXXX", "YYYY"}


@pytest.mark.parametrize("command", ["show running-config object-group network", "show object-group network"])
def test_asa_rendering_matches_a_real_capture_and_parses(command):
    cli = session(ASA)
    groups: dict[str, list[str]] = {}
    for line in ASA_CAPTURE.splitlines():
        if line.startswith("object-group network "):
            current = groups.setdefault(line.split()[-1], [])
        else:
            current.append(line.strip())
    for name, members in groups.items():
        configure(cli, name, *members)
    shown = "\n".join(run(cli, command)) + "\n"
    assert shown == ASA_CAPTURE
    parsed = parse_output(platform="cisco_asa", command=command, data=shown)
    assert ("SITE-A", "10.1.1.22") in {(row["name"], row["host"]) for row in parsed}


def test_input_is_split_into_lines_as_a_terminal_sends_them():
    buffer = bytearray(b"one\r\ntwo\nthree\rfour\x1aend\x1a\r")
    lines, skip_lf = take_lines(buffer, False)
    assert lines == ["one", "two", "three", "four", "\x1a", "end", "\x1a", ""]
    assert skip_lf is True and buffer == b""
    buffer += b"\nfive\npartial"
    lines, skip_lf = take_lines(buffer, skip_lf)
    assert lines == ["five"] and buffer == b"partial" and skip_lf is False
    buffer = bytearray(b"a\nb\nc\n")
    assert take_lines(buffer, False, limit=2) == (["a", "b"], False) and buffer == b"c\n"
    assert edit_line("hots\x7f\x7fst 192.0.2.1\x08") == "host 192.0.2."


def test_only_the_saving_forms_of_write_and_copy_exist():
    cli = session()
    configure(cli, "TS", "host 192.0.2.1")
    assert run(cli, "write erase")[1] == "% Invalid input detected at '^' marker."
    assert run(cli, "copy startup-config running-config")[1] == "% Invalid input detected at '^' marker."
    assert cli.state.startup == {} and cli.mode is Mode.EXEC
    assert run(cli, "write memory") == ["Building configuration...", "[OK]"]
    assert cli.state.startup == cli.state.running


def test_ios_abbreviates_a_long_hostname_in_configuration_modes():
    cli = session(hostname="branch-office-router-01")
    assert cli.prompt() == "branch-office-router-01#"
    run(cli, "configure terminal")
    assert cli.prompt() == "branch-office-router(config)#"


def test_a_bar_in_configuration_is_text_not_an_output_modifier():
    cli = session()
    configure(cli, "TS", "description blocks | allows")
    assert list(cli.state.running["TS"]) == ["description blocks | allows"]
    assert run(cli, "configure terminal", "do show running-config | include blocks")[1:] == [
        " description blocks | allows"
    ]


# ntc-templates' fixture tests/cisco_ios/show_object-group/cisco_ios_show_object-group-v6.raw.
IOS_V6_CAPTURE = """\
V6-Network object group TEST-v6-obj
 host 2001:db8::1:1111
 2001:db8:111:1::/48
"""


def test_ios_v6_network_groups_render_as_a_real_capture_and_parse():
    """Issue 12: the submode, its prompt, IPv6 members only, and the output ntc-templates parses."""
    cli = session()
    run(cli, "configure terminal", "object-group v6-network TEST-v6-obj")
    assert cli.prompt() == "ISR4331(config-ipv6-nw-group)#"
    assert run(cli, "host 192.0.2.1")[1] == "% Invalid input detected at '^' marker."
    assert run(cli, "host 2001:DB8:0::1:1111", "2001:db8:111:1::/48", "2001:db8::/129")[1:2] == [
        "% Invalid input detected at '^' marker."
    ]
    run(cli, "end")
    shown = "\n".join(run(cli, "show object-group name TEST-v6-obj")) + "\n"
    assert shown == IOS_V6_CAPTURE
    parsed = parse_output(platform="cisco_ios", command="show object-group", data=shown)
    assert {(row["type"], row["name"], row["host"]) for row in parsed if row["host"]} == {
        ("V6-Network", "TEST-v6-obj", "2001:db8::1:1111")
    }
    contents = IosDialect().parse_group("TEST-v6-obj", shown, v6=True)
    assert [str(c) for c in contents.cidrs] == ["2001:db8::1:1111/128"]
    assert contents.others == ("2001:db8:111:1::/48",), "host bits set: the user's line, never the tool's"
    run(cli, "configure terminal", "object-group network TEST-v6-obj")
    assert run(cli, "end") == [] and cli.state.group_type("TEST-v6-obj") == "v6-network"


def test_an_emptied_ios_v6_group_is_deleted_and_an_old_asa_refuses_ipv6():
    cli = session()
    run(cli, "configure terminal", "object-group v6-network G6", "host 2001:db8::1", "no host 2001:DB8::1")
    run(cli, "end")
    assert "G6" not in cli.state.running, "IOS-XE deletes an empty IPv6 object group by itself"
    old = session(ASA, version="8.4")
    assert "Version 8.4(1)" in run(old, "show version")[1]
    run(old, "configure terminal", "object-group network TS")
    assert run(old, "network-object host 2001:db8::1")[1] == "ERROR: % Invalid input detected at '^' marker."
    new = session(ASA, version="9.16")
    configure(new, "TS", "network-object host 2001:DB8::1", "network-object 2001:db8::/32")
    assert run(new, "configure terminal", "object-group network TS", "network-object host 2001:db8::1") == [
        "WARNING: Adding obj (2001:db8::1) to grp (TS) failed; object already exists"
    ]
    assert new.state.running["TS"] == {
        "network-object host 2001:db8::1": None,
        "network-object 2001:db8::/32": None,
    }
