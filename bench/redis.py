#!/usr/bin/env python3
"""redis-benchmark against Redis in the guest: ftvm, ftvm recording, and QEMU.

All three run the same kernel and initramfs (the cached guest image) with
Redis started by the image's init (ftvm.service=redis), on the same kind of
guest LAN: network namespaces made by scripts/netns.sh, the VM's NIC on a TAP
bridged to a client namespace where redis-benchmark runs (nothing leaves the
namespaces). QEMU runs `-machine virt -bios default` with a virtio-net device
on the same TAP. Each configuration gets a fresh LAN.

Reported per configuration: requests per second for SET and GET with 50
clients, without and with pipelining (-P 16), medians over the trials; for
the recording, event-log bytes per request and the ratio of recorded to
unrecorded throughput.

Usage: bench/redis.py [--trials N] [--requests N] [--ftvm build/ftvm]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETNS = os.path.join(ROOT, "scripts", "netns.sh")
GUEST_IP = "10.77.0.15"
DONE_KEY = "ftvm-bench-done"
GUEST_CMD = (f"i=0; until [ \"$(redis-cli get {DONE_KEY} 2>/dev/null)\" = 1 ] || [ $i -ge 3000 ]; "
             "do sleep 0.2; i=$((i+1)); done")


def sh(args, timeout=300, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{args} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="replace")


def client(lan, *args, timeout=300, check=True):
    return sh(["bash", NETNS, "exec-client", lan, *args], timeout=timeout, check=check)


def wait_pong(lan, deadline_s=90):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if "PONG" in client(lan, "redis-cli", "-h", GUEST_IP, "ping", timeout=10, check=False):
            return
    raise RuntimeError("redis in the guest never answered PING")


def benchmark(lan, requests, pipeline):
    out = client(lan, "redis-benchmark", "-h", GUEST_IP, "-c", "50", "-n", str(requests),
                 "-t", "set,get", "-P", str(pipeline), "--csv")
    rps = {}
    for line in out.splitlines():
        parts = [p.strip('"') for p in line.split(",")]
        if parts and parts[0] in ("SET", "GET"):
            rps[parts[0]] = float(parts[1])
    return rps


def run_config(name, argv_fn, requests, guest_dir):
    lan = f"fb{os.getpid() % 100000}"
    sh(["bash", NETNS, "up", lan])
    vm = None
    try:
        vm = subprocess.Popen(["ip", "netns", "exec", f"{lan}-host", *argv_fn(lan)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        wait_pong(lan)
        res = {"plain": benchmark(lan, requests, 1), "pipelined": benchmark(lan, requests, 16)}
        client(lan, "redis-cli", "-h", GUEST_IP, "set", DONE_KEY, "1")
        vm.wait(timeout=120)
        return res
    finally:
        if vm and vm.poll() is None:
            vm.kill()
            vm.wait()
        sh(["bash", NETNS, "down", lan], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--ftvm", default=os.path.join(ROOT, "build", "ftvm"))
    ap.add_argument("--guest", default=os.environ.get("FTVM_GUEST_DIR", "/var/cache/ftvm/guest/current"))
    args = ap.parse_args()
    kernel = os.path.join(args.guest, "Image")
    initrd = os.path.join(args.guest, "initramfs.cpio.gz")
    append = f"ftvm.net={GUEST_IP}/24 ftvm.service=redis"
    tmp = tempfile.mkdtemp(prefix="ftvm-bench-")
    log = os.path.join(tmp, "redis.log")

    def ftvm(lan, record=False):
        argv = [args.ftvm, "run", "--tap", "tap0", "--append", append]
        if record:
            argv += ["--record", log]
        return argv + ["--", GUEST_CMD]

    def qemu(lan):
        return ["qemu-system-riscv64", "-machine", "virt", "-bios", "default", "-m", "256M",
                "-nographic", "-kernel", kernel, "-initrd", initrd,
                "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                "-device", "virtio-net-device,netdev=n0,mac=52:54:00:77:00:0f",
                "-append", f"console=ttyS0 quiet {append} ftvm.cmd={GUEST_CMD.encode().hex()}"]

    configs = [("ftvm", lambda lan: ftvm(lan)), ("ftvm --record", lambda lan: ftvm(lan, True)),
               ("qemu", qemu)]
    results = {name: [] for name, _ in configs}
    log_bytes = []
    for trial in range(args.trials):
        for name, fn in configs:
            r = run_config(name, fn, args.requests, args.guest)
            results[name].append(r)
            if name == "ftvm --record":
                log_bytes.append(os.path.getsize(log))
            print(f"trial {trial + 1}: {name}: {r}", file=sys.stderr)

    def med(name, mode, op):
        return statistics.median(r[mode][op] for r in results[name])

    print(f"| redis-benchmark, 50 clients, {args.requests} requests (median of {args.trials}) "
          "| ftvm | ftvm --record | qemu | record / no record | ftvm / qemu |")
    print("|---|---|---|---|---|---|")
    for mode, label in (("plain", "no pipelining"), ("pipelined", "-P 16")):
        for op in ("SET", "GET"):
            f, fr, q = med("ftvm", mode, op), med("ftvm --record", mode, op), med("qemu", mode, op)
            print(f"| {op}, {label} (requests/s) | {f:.0f} | {fr:.0f} | {q:.0f} | {fr / f:.2f} | {f / q:.2f} |")
    total_requests = 4 * args.requests  # SET and GET, plain and pipelined
    print(f"\nevent log: median {statistics.median(log_bytes) / 1e6:.2f} MB for {total_requests} "
          f"requests plus boot = {statistics.median(log_bytes) / total_requests:.0f} bytes per request")


if __name__ == "__main__":
    main()
