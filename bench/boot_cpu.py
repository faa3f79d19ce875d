#!/usr/bin/env python3
"""Boot and CPU-bound speed of ftvm against qemu-system-riscv64, side by side.

Both machines boot the same kernel and initramfs (the cached guest image) with
the same command line. Each trial alternates ftvm and QEMU so both see the
same machine conditions. Measured, per trial:

  boot     host seconds from process start to the guest's init marker
           ("ftvm-guest: init"), and to power-off after `true`;
  cpu      host seconds from the init marker to the line cpubench prints
           when done, for `cpubench` (a CPU-bound program the recipe builds).

Guest MIPS for ftvm is the exact number of instructions cpubench adds to a
boot (instret of `cpubench` run minus instret of `true` run, both exact and
deterministic) divided by its cpu seconds; QEMU's MIPS is the same count over
QEMU's cpu seconds (same binary, same kernel). Medians are reported.

Usage: bench/boot_cpu.py [--trials N] [--engines interp,jit] [--ftvm build/ftvm] [--guest DIR]

Every ftvm engine in --engines is measured in the same trials, in turn with QEMU.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

MARKER = b"ftvm-guest: init"


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
    ap.add_argument("--guest", default=os.environ.get("FTVM_GUEST_DIR", "/var/cache/ftvm/guest/current"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]

    kernel = os.path.join(args.guest, "Image")
    initrd = os.path.join(args.guest, "initramfs.cpio.gz")
    extra = "ftvm.marker"

    def ftvm(engine, cmd):
        return [args.ftvm, "run", "--engine", engine, "--stats", "--append", extra, "--", cmd]

    def qemu(cmd):
        return [args.qemu, "-machine", "virt", "-bios", "default", "-m", "256M", "-nographic",
                "-kernel", kernel, "-initrd", initrd,
                "-append", f"console=ttyS0 quiet ftvm.cmd={hexcmd(cmd)} {extra}"]

    machines = engines + ["qemu"]
    res = {m: {k: [] for k in ("boot", "true_exit", "cpu")} for m in machines}
    instret_true = instret_cpu = None
    done = b"cpubench: iterations="
    for trial in range(args.trials):
        sums = {}
        for m in machines:
            argv_true = qemu("true") if m == "qemu" else ftvm(m, "true")
            argv_cpu = qemu("cpubench") if m == "qemu" else ftvm(m, "cpubench")
            b, _, e, _, err = timed_run(argv_true, None)
            res[m]["boot"].append(b)
            res[m]["true_exit"].append(e)
            if m != "qemu":
                instret_true = int(re.search(rb"instret=(\d+)", err).group(1))
            b, d, _, out, err = timed_run(argv_cpu, done)
            res[m]["cpu"].append(d - b)
            if m != "qemu":
                instret_cpu = int(re.search(rb"instret=(\d+)", err).group(1))
            sums[m] = re.search(rb"checksum=(0x[0-9a-f]+)", out).group(1)
        if len(set(sums.values())) != 1:
            raise RuntimeError(f"cpubench checksums differ: {sums}")
        print(f"trial {trial + 1}/{args.trials}: " + "; ".join(
            f"{m} boot {res[m]['boot'][-1]:.3f}s cpubench {res[m]['cpu'][-1]:.3f}s" for m in machines),
            file=sys.stderr)

    med = {m: {k: statistics.median(v) for k, v in r.items()} for m, r in res.items()}
    insns = instret_cpu - instret_true
    q = med["qemu"]
    head = " | ".join(f"ftvm {e}" for e in engines)
    ratio = " | ".join(f"{e} / qemu speed" for e in engines)
    print(f"| measure (median of {args.trials}) | {head} | qemu-system-riscv64 | {ratio} |")
    print("|---" * (2 + 2 * len(engines)) + "|")
    for key, label in (("boot", "boot to init marker"), ("true_exit", "boot, `true`, power-off"),
                       ("cpu", f"cpubench ({insns / 1e9:.3f} G instructions)")):
        vals = " | ".join(f"{med[e][key]:.3f} s" for e in engines)
        ratios = " | ".join(f"{q[key] / med[e][key]:.2f}" for e in engines)
        print(f"| {label} | {vals} | {q[key]:.3f} s | {ratios} |")
    mips = {m: insns / med[m]["cpu"] / 1e6 for m in machines}
    vals = " | ".join(f"{mips[e]:.0f}" for e in engines)
    ratios = " | ".join(f"{mips[e] / mips['qemu']:.2f}" for e in engines)
    print(f"| guest MIPS on cpubench | {vals} | {mips['qemu']:.0f} | {ratios} |")
    print(f"\nftvm boot to power-off: {instret_true} instructions (exact, identical every run and engine)")


if __name__ == "__main__":
    main()
