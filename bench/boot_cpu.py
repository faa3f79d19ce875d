#!/usr/bin/env python3
"""Boot and CPU-bound speed of ftvm against qemu-system-riscv64, side by side.

Both machines boot the same kernel and initramfs (the cached guest image) with
the same command line. Each trial runs every machine in turn (every ftvm
engine in --engines, then QEMU), so all see the same machine conditions.
Measured, per trial:

  boot     host seconds from process start to the guest's init marker
           ("ftvm-guest: init"), and to power-off after `true`;
  cpu      for each workload, host seconds from the init marker to the line
           the workload prints when done.

The workloads (--workloads, default all four) are real programs the guest
image's recipe builds:

  cpubench  guest/tools/cpubench.c: CRC32, quicksort, matrix multiply, hash
            table (integer only);
  gzip      busybox gzip -9 compresses redis-server (2.2 MB) to tmpfs, then
            gzip -d decompresses it through a pipe into cksum;
  awk       busybox awk (a tree-walking interpreter, numbers are doubles):
            string building, an associative array, arithmetic;
  float     busybox awk again, floating point only: a Basel series and a
            logistic map (FP add, multiply, divide; printed to 12 digits,
            so the checksum also checks IEEE rounding).

Every workload prints a checksum, and all machines must agree on it.

Guest MIPS for ftvm is the exact number of instructions a workload adds to a
boot (instret of the workload's run minus instret of the `true` run, both with
the same --entropy seed, so both boots are identical up to the command)
divided by its cpu seconds; QEMU's MIPS is the same count over QEMU's cpu
seconds (same binaries, same kernel). Medians are reported.

Usage: bench/boot_cpu.py [--trials N] [--engines interp,jit] [--workloads cpubench,gzip,awk,float]
                         [--ftvm build/ftvm] [--guest DIR]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

MARKER = b"ftvm-guest: init"

AWK_PROGRAM = (
    'BEGIN { s = 0; for (i = 0; i < 200000; i++) { k = sprintf("k%d", (i * 7919) % 5003); '
    'c[k]++; s = (s * 31 + length(k) + i) % 1000003 } n = 0; '
    'for (k in c) n += c[k] * length(k); printf "awk done: %d %d\\n", s, n }')

FLOAT_PROGRAM = (
    'BEGIN { s = 0; x = 0.3; for (i = 1; i <= 300000; i++) { s += 1 / (i * i); '
    'x = 3.9 * x * (1 - x) } printf "float done: %.12f %.12f\\n", s, x }')

# name -> (shell command in the guest, line prefix printed when done, checksum pattern)
WORKLOADS = {
    "cpubench": ("cpubench", b"cpubench: iterations=", rb"checksum=(0x[0-9a-f]+)"),
    "gzip": ("gzip -9 -c /usr/bin/redis-server > /tmp/r.gz && "
             "echo \"gzip done: $(cksum < /tmp/r.gz) $(gzip -d -c /tmp/r.gz | cksum)\"",
             b"gzip done: ", rb"gzip done: ([0-9 ]+)"),
    "awk": (f"awk '{AWK_PROGRAM}'", b"awk done: ", rb"awk done: ([0-9 ]+)"),
    "float": (f"awk '{FLOAT_PROGRAM}'", b"float done: ", rb"float done: ([0-9. ]+)"),
}


def hexcmd(cmd):
    return cmd.encode().hex()


def timed_run(argv, done_pattern, timeout=300):
    """Runs argv; returns (t_marker, t_done, t_exit, stdout, stderr)."""
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = b""
    t_marker = t_done = None
    os.set_blocking(p.stdout.fileno(), True)
    while True:
        chunk = p.stdout.read1(65536)
        if not chunk:
            break
        out += chunk
        now = time.monotonic() - start
        if t_marker is None and MARKER in out:
            t_marker = now
        if t_done is None and done_pattern is not None and done_pattern in out:
            t_done = now
        if now > timeout:
            p.kill()
            raise RuntimeError(f"timeout: {argv}")
    err = p.stderr.read()
    p.wait()
    t_exit = time.monotonic() - start
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {p.returncode}: {err.decode(errors='replace')}")
    if t_marker is None:
        raise RuntimeError(f"no init marker from {argv[0]}:\n{out.decode(errors='replace')}")
    return t_marker, t_done, t_exit, out, err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--ftvm", default="build/ftvm")
    ap.add_argument("--engines", default="interp,jit",
                    help="ftvm engines to measure, comma-separated (default interp,jit)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"workloads to run, comma-separated (default {','.join(WORKLOADS)})")
    ap.add_argument("--guest", default=os.environ.get("FTVM_GUEST_DIR", "/var/cache/ftvm/guest/current"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r} (known: {', '.join(WORKLOADS)})")

    kernel = os.path.join(args.guest, "Image")
    initrd = os.path.join(args.guest, "initramfs.cpio.gz")
    extra = "ftvm.marker"

    def ftvm(engine, cmd):
        return [args.ftvm, "run", "--engine", engine, "--entropy", "seed:1", "--stats",
                "--append", extra, "--", cmd]

    def qemu(cmd):
        return [args.qemu, "-machine", "virt", "-bios", "default", "-m", "256M", "-nographic",
                "-kernel", kernel, "-initrd", initrd,
                "-append", f"console=ttyS0 quiet ftvm.cmd={hexcmd(cmd)} {extra}"]

    def instret(err):
        return int(re.search(rb"instret=(\d+)", err).group(1))

    machines = engines + ["qemu"]
    res = {m: {k: [] for k in ["boot", "true_exit"] + workloads} for m in machines}
    instret_true = None
    instret_work = {}
    for trial in range(args.trials):
        for m in machines:
            argv = qemu("true") if m == "qemu" else ftvm(m, "true")
            b, _, e, _, err = timed_run(argv, None)
            res[m]["boot"].append(b)
            res[m]["true_exit"].append(e)
            if m != "qemu":
                instret_true = instret(err)
        for w in workloads:
            cmd, done, pattern = WORKLOADS[w]
            sums = {}
            for m in machines:
                argv = qemu(cmd) if m == "qemu" else ftvm(m, cmd)
                b, d, _, out, err = timed_run(argv, done)
                if d is None:
                    raise RuntimeError(f"{w} on {m} never printed its done line:\n"
                                       f"{out.decode(errors='replace')}")
                res[m][w].append(d - b)
                if m != "qemu":
                    instret_work[w] = instret(err)
                sums[m] = re.search(pattern, out).group(1)
            if len(set(sums.values())) != 1:
                raise RuntimeError(f"{w} checksums differ between machines: {sums}")
        print(f"trial {trial + 1}/{args.trials}: " + "; ".join(
            f"{m} boot {res[m]['boot'][-1]:.3f}s " + " ".join(f"{w} {res[m][w][-1]:.3f}s" for w in workloads)
            for m in machines), file=sys.stderr)

    med = {m: {k: statistics.median(v) for k, v in r.items()} for m, r in res.items()}
    q = med["qemu"]
    head = " | ".join(f"ftvm {e}" for e in engines)
    ratio = " | ".join(f"{e} / qemu speed" for e in engines)
    print(f"| measure (median of {args.trials}) | {head} | qemu-system-riscv64 | {ratio} |")
    print("|---" * (2 + 2 * len(engines)) + "|")
    rows = [("boot", "boot to init marker"), ("true_exit", "boot, `true`, power-off")]
    insns = {w: instret_work[w] - instret_true for w in workloads}
    rows += [(w, f"{w} ({insns[w] / 1e9:.3f} G instructions)") for w in workloads]
    for key, label in rows:
        vals = " | ".join(f"{med[e][key]:.3f} s" for e in engines)
        ratios = " | ".join(f"{q[key] / med[e][key]:.2f}" for e in engines)
        print(f"| {label} | {vals} | {q[key]:.3f} s | {ratios} |")
    for w in workloads:
        mips = {m: insns[w] / med[m][w] / 1e6 for m in machines}
        vals = " | ".join(f"{mips[e]:.0f}" for e in engines)
        ratios = " | ".join(f"{mips[e] / mips['qemu']:.2f}" for e in engines)
        print(f"| guest MIPS on {w} | {vals} | {mips['qemu']:.0f} | {ratios} |")
    print(f"\nftvm boot to power-off: {instret_true} instructions with --entropy seed:1 "
          "(exact, identical every run and engine)")

if __name__ == "__main__":
    main()
