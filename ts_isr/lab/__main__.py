"""``python -m ts_isr.lab device|dns|syslog ...``: the simulated device, policy server and syslog source.

Secrets may come on argv because this is a test device, but LAB_PASSWORD / LAB_SECRET from the
environment are preferred (fixtures use them) so they never show in ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from ts_isr.lab.device import serve
from ts_isr.lab.hostile import Hostile
from ts_isr.lab.machine import Device, Knobs
from ts_isr.lab.model import PLATFORMS, Profile


def device_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ts_isr.lab device", description="Simulated Cisco ISR/ASA"
    )
    parser.add_argument("--platform", choices=PLATFORMS, default="ios")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--count",
        type=int,
        default=1,
        help="serve N devices from this one process, on ports PORT..PORT+N-1, each with its own state "
        "(in STATE_DIR/dev-I) and the same knobs: a fleet for tests and benchmarks",
    )
    parser.add_argument(
        "--platforms",
        help="with --count: the devices' platforms in turn, e.g. ios,asa (default: --platform for all)",
    )
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=None, help="login password (default: $LAB_PASSWORD)")
    parser.add_argument("--secret", default=None, help="enable secret (default: $LAB_SECRET)")
    parser.add_argument("--hostname", default="")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument(
        "--preload", type=Path, help='state.json-format file: {"running": {...}, "startup": {...}}'
    )
    parser.add_argument("--authorized-keys", type=Path, help="OpenSSH authorized_keys for public-key login")
    parser.add_argument("--old-ios", action="store_true", help="no `show object-group name NAME` (IOS 15.0)")
    parser.add_argument("--max-members", type=int)
    parser.add_argument(
        "--version",
        default="",
        metavar="RELEASE",
        help="ASA release show version names (8.4: no IPv6 in groups)",
    )
    parser.add_argument("--line-cost-ms", type=float, default=0.0)
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--input-buffer", type=int, metavar="BYTES")
    parser.add_argument("--drop-after-lines", type=int, metavar="N")
    parser.add_argument("--refuse-login", action="store_true")
    parser.add_argument("--hang-on", metavar="COMMAND")
    parser.add_argument("--banner", metavar="TEXT")
    parser.add_argument("--odd-prompt", action="store_true", help="answer from ROM monitor")
    parser.add_argument(
        "--syslog", metavar="HOST:PORT", help="`logging host`: send the device's log lines there"
    )
    hostile = parser.add_argument_group("hostile modes (see ts_isr/lab/hostile.py)")
    hostile.add_argument("--trickle-ms", type=float, default=0.0, help="show output: one line every N ms")
    hostile.add_argument("--flood", action="store_true", help="a group shown goes on with members forever")
    hostile.add_argument("--extra-members", type=int, default=0, metavar="N", help="a group shown: N more")
    hostile.add_argument("--babble", action="store_true", help="each pushed member line: output without end")
    hostile.add_argument("--black-hole", action="store_true", help="pushed members vanish; probes answered")
    hostile.add_argument("--fake-prompt", action="store_true", help="a group shown: a prompt before its end")
    return parser


def parse_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"lab device: --syslog wants HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def build_device(args: argparse.Namespace) -> Device:
    password = args.password if args.password is not None else os.environ.get("LAB_PASSWORD")
    secret = args.secret if args.secret is not None else os.environ.get("LAB_SECRET")
    if not password or not secret:
        raise SystemExit("lab device: give a password and an enable secret (LAB_PASSWORD and LAB_SECRET)")
    preload = json.loads(args.preload.read_text()) if args.preload else None
    profile = Profile(
        platform=args.platform,
        hostname=args.hostname,
        secret=secret,
        old_ios=args.old_ios,
        max_members=args.max_members,
        odd_prompt=args.odd_prompt,
        version=args.version,
    )
    knobs = Knobs(
        line_cost_ms=args.line_cost_ms,
        rtt_ms=args.rtt_ms,
        input_buffer=args.input_buffer,
        drop_after_lines=args.drop_after_lines,
        refuse_login=args.refuse_login,
        hang_on=args.hang_on,
        banner=args.banner,
        syslog=parse_host_port(args.syslog) if args.syslog else None,
        hostile=Hostile(
            trickle_ms=args.trickle_ms,
            flood=args.flood,
            extra_members=args.extra_members,
            babble=args.babble,
            black_hole=args.black_hole,
            fake_prompt=args.fake_prompt,
        ),
    )
    keys = args.authorized_keys.read_text() if args.authorized_keys else None
    return Device(profile, args.username, password, knobs, args.state_dir, preload, keys)


def fleet_arguments(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One set of arguments a device: consecutive ports, platforms in turn, a state folder each."""
    if args.count == 1:
        return [args]
    if args.count < 1 or args.state_dir is None or args.preload is not None:
        raise SystemExit("lab device: --count N wants N >= 1, a --state-dir, and no --preload")
    platforms = (args.platforms or args.platform).split(",")
    if any(platform not in PLATFORMS for platform in platforms):
        raise SystemExit(f"lab device: --platforms takes {', '.join(PLATFORMS)}, not {args.platforms!r}")
    return [
        argparse.Namespace(
            **{
                **vars(args),
                "port": args.port + i,
                "platform": platforms[i % len(platforms)],
                "state_dir": args.state_dir / f"dev-{i}",
                "hostname": f"{args.hostname or 'lab'}{i}",
            }
        )
        for i in range(args.count)
    ]


async def run_device(args: argparse.Namespace) -> int:
    devices = []
    servers = []
    for each in fleet_arguments(args):
        if each.state_dir is not None:
            each.state_dir.mkdir(parents=True, exist_ok=True)
        device = build_device(each)
        devices.append(device)
        servers.append(await serve(device, each.host, each.port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    where = f"{args.port}" if args.count == 1 else f"{args.port}-{args.port + args.count - 1}"
    print(f"lab device ready on {args.host}:{where}", flush=True)
    try:
        await stop.wait()
    finally:
        for server, device in zip(servers, devices):
            server.close()
            device.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("device", "dns", "syslog"):
        print("usage: python -m ts_isr.lab {device|dns|syslog} [options]  (--help for each)", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "dns":
        from ts_isr.lab import dns  # written by the policy-server engineer; imported only when asked for

        return dns.main(rest)
    if command == "syslog":
        from ts_isr.lab import syslog

        return syslog.main(rest)
    return asyncio.run(run_device(device_parser().parse_args(rest)))


if __name__ == "__main__":
    sys.exit(main())
