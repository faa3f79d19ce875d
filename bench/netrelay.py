#!/usr/bin/env python3
"""A userspace Ethernet relay that loses, delays, duplicates and reorders
frames between two interfaces of one network namespace, for the fault
campaign (bench/campaign.py). This machine's kernel has no netem, so the
campaign splices this relay into a link it wants to impair (the clients' port
on the LAN, the logging link) and tells it what to do, while the link runs.

  ip netns exec NS bench/netrelay.py relay DEV_A DEV_B [--seed N]
      Copies every frame that arrives on DEV_A out of DEV_B and back, with
      AF_PACKET sockets (frames the relay itself sends are not seen again).
      Prints "ready" on stdout once both sockets are bound. Reads commands,
      one a line, on stdin:
        set loss=P delay_ms=D jitter_ms=J dup=P reorder=P reorder_ms=R
            (any subset; probabilities 0..1; a frame is lost with
            probability loss, else held delay_ms plus a uniform 0..jitter_ms,
            plus reorder_ms more with probability reorder, so later frames
            overtake it; with probability dup a second copy follows 0..1 ms
            later)
        clear   back to a plain copy
      Ends on EOF of stdin or SIGTERM and prints its counts as JSON on
      stderr.
  ip netns exec NS bench/netrelay.py no-offload DEV...
      Turns off checksum and segmentation offloads of DEV (SIOCETHTOOL), so
      the frames a relay reads off a veth carry full checksums and fit the
      MTU.

It only ever touches the interfaces it is given, inside the namespace it is
started in.
"""
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17
ETHTOOL_SSG = 0x19
ETHTOOL_STSO = 0x1F
ETHTOOL_SGSO = 0x24
ETHTOOL_SGRO = 0x2C


def no_offload(devs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for dev in devs:
        for cmd in (ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO, ETHTOOL_STXCSUM):
            value = ctypes.create_string_buffer(struct.pack("II", cmd, 0))
            ifreq = struct.pack("16sP", dev.encode(), ctypes.addressof(value))
            try:
                fcntl.ioctl(s, SIOCETHTOOL, ifreq)
            except OSError as e:
                # GRO may be fixed off on some devices; the rest must work.
                if cmd != ETHTOOL_SGRO:
                    sys.exit(f"netrelay: ethtool ioctl {cmd:#x} on {dev}: {e}")
    s.close()


class Relay:
    def __init__(self, dev_a, dev_b, seed):
        self.rnd = random.Random(seed)
        self.socks = []
        for dev in (dev_a, dev_b):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            try:
                s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                pass  # older kernels: outgoing frames are skipped below
            s.bind((dev, ETH_P_ALL))
            s.setblocking(False)
            self.socks.append(s)
        self.out = {self.socks[0].fileno(): self.socks[1], self.socks[1].fileno(): self.socks[0]}
        self.clear()
        self.queue = []  # (due, seq, socket, frame)
        self.seq = 0
        self.counts = {"in": 0, "out": 0, "lost": 0, "duplicated": 0, "reordered": 0,
                       "send_errors": 0}

    def clear(self):
        self.loss = self.delay = self.jitter = self.dup = self.reorder = self.reorder_ms = 0.0

    def command(self, line):
        words = line.split()
        if not words:
            return
        if words[0] == "clear":
            self.clear()
        elif words[0] == "set":
            for w in words[1:]:
                k, v = w.split("=", 1)
                v = float(v)
                if k == "loss":
                    self.loss = v
                elif k == "delay_ms":
                    self.delay = v / 1000
                elif k == "jitter_ms":
                    self.jitter = v / 1000
                elif k == "dup":
                    self.dup = v
                elif k == "reorder":
                    self.reorder = v
                elif k == "reorder_ms":
                    self.reorder_ms = v / 1000
                else:
                    raise ValueError(f"unknown setting {k}")
        else:
            raise ValueError(f"unknown command {words[0]}")

    def send(self, sock, frame):
        try:
            sock.send(frame)
            self.counts["out"] += 1
        except OSError:
            self.counts["send_errors"] += 1  # link down (a cut), or full

    def push(self, due, sock, frame):
        self.seq += 1
        heapq.heappush(self.queue, (due, self.seq, sock, frame))

    def frame(self, sock, frame):
        self.counts["in"] += 1
        if self.loss and self.rnd.random() < self.loss:
            self.counts["lost"] += 1
            return
        hold = self.delay + (self.rnd.uniform(0, self.jitter) if self.jitter else 0)
        if self.reorder and self.rnd.random() < self.reorder:
            hold += self.reorder_ms
            self.counts["reordered"] += 1
        now = time.monotonic()
        if hold <= 0 and not self.queue:
            self.send(sock, frame)
        else:
            self.push(now + hold, sock, frame)
        if self.dup and self.rnd.random() < self.dup:
            self.counts["duplicated"] += 1
            self.push(now + hold + self.rnd.uniform(0, 0.001), sock, frame)

    def run(self):
        stdin = sys.stdin.fileno()
        fds = [s.fileno() for s in self.socks] + [stdin]
        by_fd = {s.fileno(): s for s in self.socks}
        buf = b""
        print("ready", flush=True)
        while True:
            now = time.monotonic()
            while self.queue and self.queue[0][0] <= now:
                _, _, sock, frame = heapq.heappop(self.queue)
                self.send(sock, frame)
            timeout = max(0.0, self.queue[0][0] - now) if self.queue else 1.0
            ready, _, _ = select.select(fds, [], [], timeout)
            for fd in ready:
                if fd == stdin:
                    data = os.read(stdin, 4096)
                    if not data:
                        return
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self.command(line.decode())
                    continue
                sock = by_fd[fd]
                for _ in range(64):  # drain a burst, then look at the rest
                    try:
                        frame, addr = sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING:
                        continue
                    self.frame(self.out[fd], frame)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "no-offload":
        no_offload(sys.argv[2:])
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "relay":
        seed = 0
        if len(sys.argv) == 6 and sys.argv[4] == "--seed":
            seed = int(sys.argv[5])
        relay = Relay(sys.argv[2], sys.argv[3], seed)

        def on_term(signo, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, on_term)
        try:
            relay.run()
        except KeyboardInterrupt:
            pass
        print(json.dumps(relay.counts), file=sys.stderr, flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
