"""What the lab device prints for `show version`, `show running-config` and groups, and `| include ...`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ts_isr.lab.model import ASA, IOS, Profile
from ts_isr.lab.words import CliError, Words


def version(profile: Profile, uptime_seconds: float) -> list[str]:
    """`show version`, as each platform (and an old IOS) prints it."""
    hours, minutes = divmod(int(uptime_seconds) // 60, 60)
    uptime = f"{hours} hour{'s' if hours != 1 else ''}, {minutes} minute{'s' if minutes != 1 else ''}"
    name = profile.name
    if profile.platform == ASA:
        return [
            "",
            f"Cisco Adaptive Security Appliance Software Version {profile.asa_release}",
            "Firepower Extensible Operating System Version 2.2(2.97)",
            "Device Manager Version 7.9(2)152",
            "",
            "Compiled on Tue 09-Jul-19 11:34 PDT by builders",
            'System image file is "disk0:/asa984-20-lfbff-k8.SPA"',
            'Config file at boot was "startup-config"',
            "",
            f"{name} up {hours} hours {minutes} mins",
            "",
            "Hardware:   ASA5506, 4096 MB RAM, CPU Atom C2000 series 1250 MHz, 1 CPU (4 cores)",
        ]
    if profile.old_ios:
        return [
            "Cisco IOS Software, C880 Software (C880DATA-UNIVERSALK9-M), Version 15.0(1)M4, "
            "RELEASE SOFTWARE (fc1)",
            "Technical Support: http://www.cisco.com/techsupport",
            "Copyright (c) 1986-2010 by Cisco Systems, Inc.",
            "",
            f"{name} uptime is {uptime}",
            'System image file is "flash:c880data-universalk9-mz.150-1.M4.bin"',
            "",
            "Cisco 881 (MPC8300) processor (revision 1.0) with 236544K/25600K bytes of memory.",
            "Configuration register is 0x2102",
            "",
        ]
    return [
        "Cisco IOS XE Software, Version 16.09.04",
        "Cisco IOS Software [Fuji], ISR Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version 16.9.4, "
        "RELEASE SOFTWARE (fc2)",
        "Technical Support: http://www.cisco.com/techsupport",
        "Copyright (c) 1986-2019 by Cisco Systems, Inc.",
        "",
        "ROM: IOS-XE ROMMON",
        "",
        f"{name} uptime is {uptime}",
        'System image file is "bootflash:isr4300-universalk9.16.09.04.SPA.bin"',
        "",
        "cisco ISR4331/K9 (1RU) processor with 1795999K/6147K bytes of memory.",
        "Processor board ID FDO21520TGH",
        "Configuration register is 0x2102",
        "",
    ]


def running_config(
    profile: Profile, groups: dict[str, dict[str, None]], types: dict[str, str] | None = None
) -> list[str]:
    if profile.platform == ASA:
        return asa_running_config(profile, groups)
    body = ["!", "version 16.9", f"hostname {profile.name}", "!"]
    for name, members in groups.items():
        kind = (types or {}).get(name, "network")
        body += [f"object-group {kind} {name}", *(f" {member}" for member in members), "!"]
    body.append("end")
    size = sum(len(line) + 1 for line in body)
    return ["Building configuration...", "", f"Current configuration : {size} bytes", *body, ""]


def asa_running_config(profile: Profile, groups: dict[str, dict[str, None]]) -> list[str]:
    lines = [
        ": Saved",
        ":",
        f"ASA Version {profile.asa_release}",
        "!",
        f"hostname {profile.name}",
        "names",
        "!",
    ]
    for name, members in groups.items():
        lines += asa_object_group_config(name, members)
    return [*lines, ": end"]


def filter_output(platform: str, lines: list[str], pipe: str, column: int) -> list[str]:
    """`| include|exclude|begin|section REGEX` applied to a command's output."""
    words = Words(pipe)
    kinds = ("include", "exclude", "begin") + (("section",) if platform == IOS else ("grep",))
    try:
        kind = words.keyword(kinds)
        pattern = re.compile(words.rest())
    except re.error as error:
        raise CliError("invalid", column) from error
    except CliError as error:
        error.column += column
        raise
    if kind in ("include", "grep"):
        return [line for line in lines if pattern.search(line)]
    if kind == "exclude":
        return [line for line in lines if not pattern.search(line)]
    if kind == "begin":
        start = next((i for i, line in enumerate(lines) if pattern.search(line)), len(lines))
        return lines[start:]
    kept, inside = [], False
    for line in lines:
        if not line.startswith(" "):
            inside = bool(pattern.search(line))
        if inside:
            kept.append(line)
    return kept


def ios_show_object_group(name: str, members: Iterable[str], kind: str = "network") -> list[str]:
    """`show object-group name NAME` on IOS: members indented, description capitalised."""
    lines = [f"{'V6-Network' if kind == 'v6-network' else 'Network'} object group {name}"]
    for member in members:
        if member.startswith("description "):
            member = "Description " + member.removeprefix("description ")
        lines.append(" " + member)
    return lines


def asa_object_group_config(name: str, members: Iterable[str]) -> list[str]:
    """`show running-config object-group id NAME` on the ASA: the configuration form."""
    return [f"object-group network {name}", *(f" {member}" for member in members)]
