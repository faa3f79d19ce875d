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

Usage: bench/boot_cpu.py [--trials N] [--ftvm build/ftvm] [--guest DIR]
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
    ap.add_argument("--guest", default=os.environ.get("FTVM_GUEST_DIR", "/var/cache/ftvm/guest/current"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    args = ap.parse_args()

    kernel = os.path.join(args.guest, "Image")
    initrd = os.path.join(args.guest, "initramfs.cpio.gz")
    extra = "ftvm.marker"

    def ftvm(cmd):
        return [args.ftvm, "run", "--stats", "--append", extra, "--", cmd]

    def qemu(cmd):
        return [args.qemu, "-machine", "virt", "-bios", "default", "-m", "256M", "-nographic",
                "-kernel", kernel, "-initrd", initrd,
                "-append", f"console=ttyS0 quiet ftvm.cmd={hexcmd(cmd)} {extra}"]

    res = {k: [] for k in ("ftvm_boot", "ftvm_true_exit", "qemu_boot", "qemu_true_exit",
                           "ftvm_cpu", "qemu_cpu")}
    instret_true = instret_cpu = None
    done = b"cpubench: iterations="
    for trial in range(args.trials):
        m, _, e, _, err = timed_run(ftvm("true"), None)
        res["ftvm_boot"].append(m)
        res["ftvm_true_exit"].append(e)
        instret_true = int(re.search(rb"instret=(\d+)", err).group(1))
        m, _, e, _, _ = timed_run(qemu("true"), None)
        res["qemu_boot"].append(m)
        res["qemu_true_exit"].append(e)
        m, d, _, out_f, err = timed_run(ftvm("cpubench"), done)
        res["ftvm_cpu"].append(d - m)
        instret_cpu = int(re.search(rb"instret=(\d+)", err).group(1))
        m, d, _, out_q, _ = timed_run(qemu("cpubench"), done)
        res["qemu_cpu"].append(d - m)
        sum_f = re.search(rb"checksum=(0x[0-9a-f]+)", out_f).group(1)
        sum_q = re.search(rb"checksum=(0x[0-9a-f]+)", out_q).group(1)
        if sum_f != sum_q:
            raise RuntimeError(f"cpubench checksums differ: ftvm {sum_f} qemu {sum_q}")
        print(f"trial {trial + 1}/{args.trials}: boot ftvm {res['ftvm_boot'][-1]:.3f}s "
              f"qemu {res['qemu_boot'][-1]:.3f}s; cpubench ftvm {res['ftvm_cpu'][-1]:.3f}s "
              f"qemu {res['qemu_cpu'][-1]:.3f}s", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in res.items()}
    insns = instret_cpu - instret_true
    mips_f = insns / med["ftvm_cpu"] / 1e6
    mips_q = insns / med["qemu_cpu"] / 1e6
    print(f"| measure (median of {args.trials}) | ftvm | qemu-system-riscv64 | ftvm / qemu speed |")
    print("|---|---|---|---|")
    print(f"| boot to init marker | {med['ftvm_boot']:.3f} s | {med['qemu_boot']:.3f} s | "
          f"{med['qemu_boot'] / med['ftvm_boot']:.2f} |")
    print(f"| boot, `true`, power-off | {med['ftvm_true_exit']:.3f} s | {med['qemu_true_exit']:.3f} s | "
          f"{med['qemu_true_exit'] / med['ftvm_true_exit']:.2f} |")
    print(f"| cpubench ({insns / 1e9:.3f} G instructions) | {med['ftvm_cpu']:.3f} s | "
          f"{med['qemu_cpu']:.3f} s | {med['qemu_cpu'] / med['ftvm_cpu']:.2f} |")
    print(f"| guest MIPS on cpubench | {mips_f:.0f} | {mips_q:.0f} | {mips_f / mips_q:.2f} |")
    print(f"\nftvm boot to power-off: {instret_true} instructions (exact, identical every run)")


if __name__ == "__main__":
    main()
