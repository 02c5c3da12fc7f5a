"""``python -m ts_isr.demo``: the main job end to end on this machine alone, in a few seconds.

It starts the lab ISR (a simulated router over real SSH) and the embedded
policy DNS server with the sample zone, all on 127.0.0.1; runs setup without
questions (system files under the demo's own directory, never the real
system); then upload_rules twice: the first load, and an incremental change
after the zone switches to its second variant.  It shows each run's log.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ts_isr.errors import Exit
from ts_isr.lab.dns import PolicyDnsServer

DATA = Path(__file__).resolve().parent / "data"
BLOCK_LIST = "block.lab.threatstop.local"
ALLOW_LIST = "allow.lab.threatstop.local"
USERNAME = "tsadmin"
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabIsr:
    """The lab ISR as a subprocess; its secrets travel in the environment, never on argv."""

    def __init__(self, state_dir: Path) -> None:
        self.port = free_port()
        self.password = "demo-" + secrets.token_hex(8)
        self.secret = "enable-" + secrets.token_hex(8)
        argv = [sys.executable, "-m", "ts_isr.lab", "device", "--platform", "ios", "--port", str(self.port)]
        argv += ["--username", USERNAME, "--state-dir", str(state_dir), "--line-cost-ms", "0.5"]
        env = dict(os.environ, LAB_PASSWORD=self.password, LAB_SECRET=self.secret)
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        said: list[str] = []
        reader = threading.Thread(target=lambda: said.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT)
        if not said or "ready" not in said[0]:
            self.stop()
            raise SystemExit(f"demo: the lab ISR did not start ({(said or [''])[0].strip()})")
        print(f"demo: {said[0].strip()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_setup(config: Path, lab: LabIsr, dns_port: int, work: Path) -> None:
    """setup --silent, with the system files under ``work/root``.

    A setup that cannot finish fails the demo: it is the path every user takes first.
    """
    argv = [sys.executable, "-m", "ts_isr.commands.setup", "--silent", "--config", str(config)]
    argv += ["--block-list", BLOCK_LIST, "--allow-list", ALLOW_LIST, "--device", "127.0.0.1"]
    argv += ["--ssh-port", str(lab.port), "--port", str(dns_port), "--dns-server", "127.0.0.1"]
    argv += ["--username", USERNAME, "--personality", "ios", "--trust-host-key", "--no-first-run"]
    argv += ["--root", str(work / "root"), "--logfile", str(work / "device.log")]
    env = dict(os.environ, TS_PASSWORD=lab.password, TS_ENABLE_PW=lab.secret)
    print("\n$ setup --silent --trust-host-key ... (passwords from the environment)")
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not config.exists():
        said = (done.stdout + done.stderr).strip().splitlines()
        raise SystemExit(f"demo: FAILED: setup could not finish ({said[-1] if said else done.returncode})")
    print("demo: setup wrote the config, trusted the device's host key and checked the login.")


def upload_rules(config: Path, *flags: str) -> int:
    """One run as cron does it; then the lines it logged (tsoutput.log), without the DEBUG detail."""
    tsoutput = config.parent / "tsoutput.log"
    start = tsoutput.stat().st_size if tsoutput.exists() else 0
    flags = ("--detailed-exitcodes", *flags)  # the demo tells "changed" apart
    print(f"\n$ upload_rules --config {config.name} {' '.join(flags)}".rstrip())
    argv = [sys.executable, "-m", "ts_isr.commands.upload_rules", "--config", str(config), *flags]
    done = subprocess.run(argv, capture_output=True, text=True)
    if tsoutput.exists():
        with open(tsoutput, encoding="utf-8") as handle:
            handle.seek(start)
            for line in handle:
                if "[DEBUG]" not in line:
                    print(line.rstrip().split(" ", 2)[-1])
    extra = [line for line in done.stdout.splitlines() if line.startswith("[ERROR]")]
    print("\n".join(extra) if extra else "", end="\n" if extra else "")
    meaning = {Exit.UNCHANGED: "nothing changed", Exit.CHANGED: "changed"}.get(done.returncode, "failed")
    print(f"(exit {done.returncode}: {meaning})")
    return done.returncode


def demo(work: Path) -> int:
    zone = work / "policy.zone"
    shutil.copyfile(DATA / "sample.zone", zone)
    with PolicyDnsServer(zone) as dns:
        print(f"demo: policy DNS server for {BLOCK_LIST} on 127.0.0.1 port {dns.port}")
        lab = LabIsr(work / "lab")
        try:
            config = work / "threatstop.conf"
            run_setup(config, lab, dns.port, work)
            first = upload_rules(config)
            print("\ndemo: the policy changes (the zone switches to its second variant)")
            shutil.copyfile(DATA / "sample-changed.zone", zone)
            dns.reload()
            second = upload_rules(config)
        finally:
            lab.stop()
    ok = first == Exit.CHANGED and second == Exit.CHANGED
    print(f"\ndemo: {'done' if ok else 'FAILED'}; the files are in {work}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ts_isr.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, help="keep the demo's files here (default: a temporary directory)"
    )
    args = parser.parse_args(argv)
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        return demo(args.dir.resolve())
    with tempfile.TemporaryDirectory(prefix="ts_isr-demo-") as tmp:
        return demo(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
