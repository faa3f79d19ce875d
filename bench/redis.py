#!/usr/bin/env python3
"""redis-benchmark against Redis in the guest: ftvm, ftvm recording, and QEMU.

All three run the same kernel and initramfs (the cached guest image) with
Redis started by the image's init (ftvm.service=redis), on the same kind of
guest LAN: network namespaces made by scripts/netns.sh, the VM's NIC on a TAP
bridged to a client namespace where redis-benchmark runs (nothing leaves the
namespaces). QEMU runs `-machine virt -bios default` with a virtio-net device
on the same TAP. Each configuration gets a fresh LAN.

Configurations: ftvm on each engine in --engines (default interp,jit), ftvm
recording (--record) on the last engine listed, and QEMU.

Reported per configuration: requests per second for SET and GET with 50
clients, without and with pipelining (-P 16), medians over the trials; for
the recording, event-log bytes per request and the ratio of recorded to
unrecorded throughput (same engine).

Usage: bench/redis.py [--trials N] [--requests N] [--engines interp,jit] [--ftvm build/ftvm]
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
    ap.add_argument("--engines", default="interp,jit",
                    help="ftvm engines to measure, comma-separated; the last one also records")
    ap.add_argument("--guest", default=os.environ.get("FTVM_GUEST_DIR", "/var/cache/ftvm/guest/current"))
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    rec_engine = engines[-1]
    kernel = os.path.join(args.guest, "Image")
    initrd = os.path.join(args.guest, "initramfs.cpio.gz")
    append = f"ftvm.net={GUEST_IP}/24 ftvm.service=redis"
    tmp = tempfile.mkdtemp(prefix="ftvm-bench-")
    log = os.path.join(tmp, "redis.log")

    def ftvm(lan, engine, record=False):
        argv = [args.ftvm, "run", "--engine", engine, "--tap", "tap0", "--append", append]
        if record:
            argv += ["--record", log]
        return argv + ["--", GUEST_CMD]

    def qemu(lan):
        return ["qemu-system-riscv64", "-machine", "virt", "-bios", "default", "-m", "256M",
                "-nographic", "-kernel", kernel, "-initrd", initrd,
                "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                "-device", "virtio-net-device,netdev=n0,mac=52:54:00:77:00:0f",
                "-append", f"console=ttyS0 quiet {append} ftvm.cmd={GUEST_CMD.encode().hex()}"]

    rec_name = f"ftvm {rec_engine} --record"
    configs = [(f"ftvm {e}", lambda lan, e=e: ftvm(lan, e)) for e in engines]
    configs += [(rec_name, lambda lan: ftvm(lan, rec_engine, True)), ("qemu", qemu)]
    results = {name: [] for name, _ in configs}
    log_bytes = []
    for trial in range(args.trials):
        for name, fn in configs:
            r = run_config(name, fn, args.requests, args.guest)
            results[name].append(r)
            if name == rec_name:
                log_bytes.append(os.path.getsize(log))
            print(f"trial {trial + 1}: {name}: {r}", file=sys.stderr)

    def med(name, mode, op):
        return statistics.median(r[mode][op] for r in results[name])

    names = [f"ftvm {e}" for e in engines]
    print(f"| redis-benchmark, 50 clients, {args.requests} requests (median of {args.trials}) | "
          + " | ".join(names) + f" | {rec_name} | qemu | record / no record | "
          + " | ".join(f"{e} / qemu" for e in engines) + " |")
    print("|---" * (4 + 2 * len(engines)) + "|")
    for mode, label in (("plain", "no pipelining"), ("pipelined", "-P 16")):
        for op in ("SET", "GET"):
            f = {n: med(n, mode, op) for n in names}
            fr, q = med(rec_name, mode, op), med("qemu", mode, op)
            print(f"| {op}, {label} (requests/s) | " + " | ".join(f"{f[n]:.0f}" for n in names)
                  + f" | {fr:.0f} | {q:.0f} | {fr / f[f'ftvm {rec_engine}']:.2f} | "
                  + " | ".join(f"{f[n] / q:.2f}" for n in names) + " |")
    total_requests = 4 * args.requests  # SET and GET, plain and pipelined
    print(f"\nevent log: median {statistics.median(log_bytes) / 1e6:.2f} MB for {total_requests} "
          f"requests plus boot = {statistics.median(log_bytes) / total_requests:.0f} bytes per request")


if __name__ == "__main__":
    main()
