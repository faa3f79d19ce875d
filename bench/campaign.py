#!/usr/bin/env python3
"""The fault campaign: real `ftvm up` pairs, real Redis clients, real faults,
and judges that fail a run on any lost write, non-linearizable history,
split brain on the LAN or client-visible error.

  bench/campaign.py --schedules N --seed S [--resume] [--out DIR] [--only I]

Schedule I of seed S is drawn from a generator seeded with "S/I" alone, so
it is the same on every run and every machine. Each schedule:
  1. `ftvm up --name NAME --fresh --no-reprotect` (namespaces NAME-*; default
     NAME camp; new disk copies, so Redis starts empty; no supervisor, so a
     host's faults are the schedule's alone and the deposed-host audit below
     holds for the whole run). With --reprotect, without --no-reprotect: a
     deposed host is restarted as a backup that joins the survivor by state
     transfer while the schedule's faults go on;
  2. an AF_PACKET audit of the LAN (in NAME-lan): every frame the guest's MAC
     sends into the switch from each host's port, kernel-timestamped;
  3. when the schedule impairs a link, a relay (bench/netrelay.py) spliced
     into it: the clients' port (NAME-client eth0) for the LAN, the backup
     host's end of the logging link (NAME-bak log0);
  4. the workload, in NAME-client: --clients Redis clients (half on one
     persistent connection, half opening a connection per request) doing
     SET, GET and INCR on --keys keys, every call and return timestamped
     with CLOCK_MONOTONIC; after they stop, one fresh connection reads
     every key;
  5. the faults, at seeded times during the workload: SIGKILL or
     SIGSTOP(+CONT) of the primary, the backup or the arbiter (`ftvm
     kill`; a killed arbiter is started again with its own command line),
     cutting or flapping the logging link and an arbiter link
     (scripts/ftnet.sh cut-log, cut-arb), loss, delay, duplication and
     reordering on the LAN or the logging link (the relay), a rate limit
     on the logging link (tc tbf). Without --reprotect at most one fault
     per schedule may depose a node (a second one would leave no node to
     take over); arbiter and LAN faults may overlap it. With --reprotect,
     schedules are long: 2 to 4 deposing faults 8-12 s apart (each but
     the first made only once the pair is paired again, waiting up to 60 s:
     the protected-again judge fails a schedule that is not), most followed by a fault aimed at the
     join that re-protects it, acting once the pair's status shows a
     transfer running: kill-joiner, stop-joiner, stop-primary-mid-join
     (0.1-2.5 s), second-joiner (the host's saved backup command started
     again while its backup joins: it must be refused), or right after the
     deposing fault stale-primary (host a's original `ftvm primary` command
     line started again: it must be refused); such pairs run
     with --transfer-mbps 100 so that a join lasts about 2 s;
  6. `ftvm down`.
The judges, any one of which fails the schedule:
  linearizable   each key's history, by the Wing-Gong search of
                 bench/linearizability.py (operations without a reply may
                 or may not have taken effect; an undecided search fails);
  acked-writes   every acknowledged SET and INCR is reflected in the final
                 read;
  lan-epochs     once frames of the guest came from one host after the
                 other's, the other never sends again (no split brain);
                 with --reprotect: not before it has taken an epoch after
                 the other host's latest (from the pair's history);
  client-errors  no client saw an error: a reset, an EOF, a refused
                 connection or a reply later than --request-timeout;
  serves-again   a request succeeds within --serve-deadline seconds of the
                 last fault's end, and the final reads succeed;
  pair-up        `ftvm up` worked and the pair was paired before the faults;
  second-joiner, stale-primary  (--reprotect) a second backup process on a
                 host, or host a's original primary command line started
                 again after a deposing fault, is refused (exits non-zero)
                 within 60 s;
  protected-again (--reprotect) the pair is paired again within 60 s of
                 the workload's end.

Results: one JSON line per schedule in DIR/results.jsonl (default DIR:
bench/results/campaign-S); --resume skips schedules already there. For a
failed schedule, DIR/I/ keeps the history, the LAN audit and the pair's
logs. Prints a verdict per schedule and a summary; exit status 1 when any
schedule failed (each failure is printed with the command that reruns it),
2 for bad usage.

Internal modes (run by the campaign inside a namespace): `workload`,
`lan-audit`.
"""
import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linearizability as lin  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FTNET = os.path.join(ROOT, "scripts", "ftnet.sh")
RELAY = os.path.join(ROOT, "bench", "netrelay.py")
SELF = os.path.abspath(__file__)
GUEST_IP = "10.77.0.15"
GUEST_MAC = bytes.fromhex("52540077000f")
REDIS_PORT = 6379
LAN_CIDR = "10.77.0.2/24"   # the client namespace's address (scripts/ftnet.sh)
LOG_CIDR = "10.78.0.2/30"   # the backup host's end of the logging link

# --- the workload (runs in NAME-client) ---------------------------------------


class RespError(Exception):
    pass


class Conn:
    """A tiny RESP client on one TCP connection."""

    def __init__(self, timeout):
        self.sock = socket.create_connection((GUEST_IP, REDIS_PORT), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("connection closed by the server (EOF)")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("connection closed by the server (EOF)")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def call(self, *args):
        req = [f"*{len(args)}\r\n".encode()]
        for a in args:
            a = str(a).encode()
            req.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(req))
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n).decode()
        raise ConnectionError(f"unexpected reply {line[:40]!r}")


def workload_main(a):
    rnd0 = random.Random(a.seed)
    keys = [f"k{i}" for i in range(a.keys)]
    ops, errors = [], []
    lock = threading.Lock()
    stop_at = time.monotonic() + a.duration

    def client(cid):
        rnd = random.Random(rnd0.getrandbits(64) + cid)
        persistent = cid % 2 == 0
        conn = None
        seq = 0
        while time.monotonic() < stop_at:
            key = rnd.choice(keys)
            r = rnd.random()
            kind = "set" if r < 0.3 else ("get" if r < 0.7 else "incr")
            seq += 1
            o = {"client": cid, "key": key, "op": kind, "ret": None, "out": None}
            if kind == "set":
                # Unique, a multiple of SET_UNIT: a final value names its SET.
                o["arg"] = ((cid + 1) * 1_000_000 + seq) * lin.SET_UNIT
            o["call"] = time.monotonic_ns()
            try:
                if conn is None:
                    conn = Conn(a.request_timeout)
                if kind == "set":
                    out = conn.call("SET", key, o["arg"])
                elif kind == "get":
                    out = conn.call("GET", key)
                    out = None if out is None else int(out)
                else:
                    out = conn.call("INCR", key)
                o["ret"], o["out"] = time.monotonic_ns(), out
            except RespError as e:
                o["ret"], o["out"] = time.monotonic_ns(), "ERR"
                o["error"] = f"error reply: {e}"
            except (OSError, ConnectionError, ValueError) as e:
                o["error"] = f"{type(e).__name__}: {e}"
                if conn is not None:
                    conn.close()
                conn = None
            if not persistent and conn is not None:
                conn.close()
                conn = None
            with lock:
                ops.append(o)
                if "error" in o:
                    errors.append({"client": cid, "persistent": persistent, "t": time.monotonic_ns(),
                                   "op": kind, "call": o["call"], "message": o["error"]})
            time.sleep(rnd.uniform(0, a.think_ms / 1000))
        if conn is not None:
            conn.close()

    started = time.monotonic_ns()
    print(json.dumps({"started": started}), flush=True)
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The final read, on a fresh connection, after every client stopped.
    final = {}
    try:
        conn = Conn(a.request_timeout)
        for key in keys:
            o = {"client": "final", "key": key, "op": "get", "call": time.monotonic_ns()}
            v = conn.call("GET", key)
            o["ret"], o["out"] = time.monotonic_ns(), None if v is None else int(v)
            ops.append(o)
            final[key] = o["out"]
        conn.close()
    except (OSError, ConnectionError, ValueError, RespError) as e:
        errors.append({"client": "final", "t": time.monotonic_ns(), "op": "get",
                       "message": f"final read: {type(e).__name__}: {e}"})
        final = None
    with open(a.out, "w") as f:
        json.dump({"started": started, "ops": ops, "errors": errors, "final": final,
                   "keys": keys}, f)
    return 0


# --- the LAN audit (runs in NAME-lan) ------------------------------------------

SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def lan_audit_main(a):
    """Records, per host port of the switch, the runs of frames the guest's
    MAC sent into it: [[port, first_ns, last_ns, frames], ...] in time order
    (kernel receive times turned into CLOCK_MONOTONIC)."""
    socks = {}
    for port in ("veth-pri", "veth-bak"):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind((port, 0x0003))
        s.setblocking(False)
        socks[s.fileno()] = (s, "pri" if port == "veth-pri" else "bak")
    offset = time.time_ns() - time.monotonic_ns()
    frames = []  # (t_mono_ns, port)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("ready", flush=True)
    while not stop:
        try:
            ready, _, _ = select.select(list(socks), [], [], 0.2)
        except InterruptedError:
            continue
        for fd in ready:
            s, port = socks[fd]
            while True:
                try:
                    data, anc, _, addr = s.recvmsg(64, socket.CMSG_SPACE(16))
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING or data[6:12] != GUEST_MAC:
                    continue
                t = time.time_ns()
                for level, kind, cdata in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", cdata[:16])
                        t = sec * 1_000_000_000 + nsec
                frames.append((t - offset, port))
    frames.sort()
    runs = []
    for t, port in frames:
        if runs and runs[-1][0] == port:
            runs[-1][2] = t
            runs[-1][3] += 1
        else:
            runs.append([port, t, t, 1])
    with open(a.out, "w") as f:
        json.dump({"runs": runs}, f)
    return 0


# --- schedules -------------------------------------------------------------------

# Fault kinds. "deposes": may cost the pair a node (at most one a schedule).
FAULTS = {
    "kill-primary": True, "kill-backup": True, "stop-primary": True, "stop-backup": True,
    "cut-log": True, "flap-log": True, "log-impair": True, "log-rate": True,
    "kill-arbiter": False, "stop-arbiter": False, "cut-arb": False, "flap-arb": False,
    "lan-impair": False,
}


def impairment(rnd):
    kind = rnd.choice(["loss", "delay", "dup", "reorder", "mix"])
    s = {}
    if kind in ("loss", "mix"):
        s["loss"] = round(rnd.uniform(0.01, 0.15), 3)
    if kind in ("delay", "mix"):
        s["delay_ms"] = rnd.randrange(1, 80)
        s["jitter_ms"] = rnd.randrange(0, 40)
    if kind in ("dup", "mix"):
        s["dup"] = round(rnd.uniform(0.02, 0.3), 3)
    if kind in ("reorder", "mix"):
        s["reorder"] = round(rnd.uniform(0.05, 0.3), 3)
        s["reorder_ms"] = rnd.randrange(2, 30)
    return s


# Faults aimed at a join (--reprotect): each waits until a new backup is
# joining (the pair's status shows a transfer), then acts on it.
JOIN_FAULTS = ["kill-joiner", "stop-joiner", "stop-primary-mid-join", "second-joiner"]
# Right after a deposing fault: host a's original `ftvm primary` command
# line started again (a stale node trying to go live); it must be refused.
STALE_FAULTS = ["stale-primary"]


def make_long_schedule(rnd, window_s):
    """--reprotect: 2 to 4 deposing faults in a row, each once the pair has
    had time to be protected again (8-12 s apart), most followed by a fault
    aimed at the join that re-protects it; at most one arbiter or LAN fault
    overlapping."""
    faults = []
    t = round(rnd.uniform(0, 3), 2)
    for _ in range(rnd.choice([2, 2, 3, 3, 4])):
        kind = rnd.choice(["kill-primary", "kill-primary", "kill-backup", "stop-primary",
                           "stop-backup", "cut-log"])
        f = {"kind": kind, "at": t, "duration": round(rnd.uniform(0.8, 3.0), 2)}
        if kind in ("kill-primary", "kill-backup"):
            f["duration"] = 0
        if faults:
            # Not before the pair is protected again (the harness waits).
            f["protected"] = True
        faults.append(f)
        if rnd.random() < 0.7:
            jk = rnd.choice(JOIN_FAULTS + STALE_FAULTS)
            j = {"kind": jk, "at": round(fault_end(f) + 0.05, 2)}
            if jk in ("stop-joiner", "stop-primary-mid-join"):
                # Some shorter than the failure timeout (0.5 s), some longer.
                j["duration"] = round(rnd.choice([rnd.uniform(0.1, 0.4), rnd.uniform(0.7, 2.5)]), 2)
            faults.append(j)
        t = round(fault_end(f) + rnd.uniform(8, 12), 2)
    if rnd.random() < 0.5:
        g = rnd.choice([["kill-arbiter", "stop-arbiter"], ["cut-arb", "flap-arb"], ["lan-impair"]])
        kind = rnd.choice(g)
        f = {"kind": kind, "at": round(rnd.uniform(0, t), 2), "duration": round(rnd.uniform(0.5, 3.0), 2)}
        if kind in ("flap-arb",):
            f["flaps"] = [round(rnd.uniform(0.05, 0.3), 2) for _ in range(rnd.randrange(2, 6))]
            f["duration"] = round(sum(f["flaps"]) * 2, 2)
        if kind in ("cut-arb", "flap-arb"):
            f["host"] = rnd.choice(["pri", "bak"])
        if kind == "lan-impair":
            f["impair"] = impairment(rnd)
        if kind == "kill-arbiter":
            f["restart_after"] = f.pop("duration")
        faults.append(f)
    faults.sort(key=lambda f: f["at"])
    return faults


def make_schedule(seed, index, window_s=10.0, reprotect=False):
    """The faults of schedule `index` of campaign `seed`: a list of
    {kind, at, duration, ...}, times in seconds from the start of the
    workload's fault window. Pure function of (seed, index, reprotect)."""
    if reprotect:
        return make_long_schedule(random.Random(f"{seed}/{index}/reprotect"), window_s)
    rnd = random.Random(f"{seed}/{index}")
    deposing = [k for k, d in FAULTS.items() if d]
    # Faults that may overlap, at most one of each group (two faults on the
    # same process or link would undo each other).
    groups = [["kill-arbiter", "stop-arbiter"], ["cut-arb", "flap-arb"], ["lan-impair"]]
    faults = []
    kinds = []
    if rnd.random() < 0.85:
        kinds.append(rnd.choice(deposing))
    for g in rnd.sample(groups, rnd.choice([0, 1, 1, 2]) if kinds else 1):
        kinds.append(rnd.choice(g))
    for kind in kinds:
        f = {"kind": kind, "at": round(rnd.uniform(0, window_s), 2),
             "duration": round(rnd.uniform(0.5, 3.0), 2)}
        if kind.startswith("stop-"):
            # Some stops are shorter than the failure timeout (0.5 s).
            f["duration"] = round(rnd.choice([rnd.uniform(0.1, 0.4), rnd.uniform(0.6, 3.0)]), 2)
        if kind in ("flap-log", "flap-arb"):
            f["flaps"] = [round(rnd.uniform(0.05, 0.3), 2) for _ in range(rnd.randrange(2, 6))]
            f["duration"] = round(sum(f["flaps"]) * 2, 2)
        if kind in ("cut-arb", "flap-arb"):
            f["host"] = rnd.choice(["pri", "bak"])
        if kind in ("log-impair", "lan-impair"):
            f["impair"] = impairment(rnd)
            f["duration"] = round(rnd.uniform(1.0, 5.0), 2)
        if kind == "log-rate":
            f["mbit"] = rnd.choice([1, 2, 4, 8])
        if kind == "kill-arbiter":
            f["restart_after"] = f.pop("duration")
        if kind in ("kill-primary", "kill-backup"):
            f["duration"] = 0
        faults.append(f)
    faults.sort(key=lambda f: f["at"])
    return faults


def fault_end(f):
    return f["at"] + f.get("duration", 0) + f.get("restart_after", 0)


def describe(f):
    extra = ""
    if "host" in f:
        extra += f" {f['host']}"
    if "impair" in f:
        extra += " " + ",".join(f"{k}={v}" for k, v in f["impair"].items())
    if "mbit" in f:
        extra += f" {f['mbit']}mbit"
    if "flaps" in f:
        extra += f" {len(f['flaps'])} flaps"
    d = f.get("duration") or f.get("restart_after")
    return f"{f['kind']}{extra} @{f['at']:.1f}s" + (f"/{d:.1f}s" if d else "")


# --- running one schedule ---------------------------------------------------------


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(args, timeout=120, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): "
                           f"{r.stderr.decode(errors='replace')[-1500:]}")
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


class Run:
    """One schedule on one pair; everything it starts is stopped by PID."""

    def __init__(self, a, index, faults, workdir):
        self.a, self.index, self.faults, self.work = a, index, faults, workdir
        self.name = a.name
        self.pair_dir = os.path.join(os.environ.get("FTVM_RUN_DIR") or "/run/ftvm", self.name)
        self.procs = []
        self.relays = {}
        self.events = []  # (t_mono_ns, what)
        self.problems = []
        self.stopped = {}  # what -> host letter or "arbiter", for CONT
        self.arbiter_argv = None
        self.rate_limited = False
        self.missed_joins = 0
        self.primary_argv = None

    def ftvm(self, *args, timeout=120, check=True):
        return sh([self.a.ftvm, *args], timeout=timeout, check=check)

    def ftnet(self, *args):
        return sh(["bash", FTNET, *args])

    def netns(self, role, *cmd):
        return ["ip", "netns", "exec", f"{self.name}-{role}", *cmd]

    def event(self, what):
        self.events.append((time.monotonic_ns(), what))
        log(f"  {what}")

    def spawn(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def status(self):
        try:
            r = subprocess.run([self.a.ftvm, "status", "--name", self.name, "--json"],
                               capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
            return json.loads(r.stdout)
        except (ValueError, subprocess.TimeoutExpired) as e:
            return {"error": str(e)}

    # --- relays ---

    def splice_relay(self, role, dev, cidr, far=None):
        """Splices bench/netrelay.py into `dev` of NAME-role: a new veth pair
        rl0 (the relay's side) / rl1 (the stack's side) takes over dev's MAC
        and address; dev, with a fresh MAC, no address and promiscuous,
        only feeds the relay. `far` = (role, dev) of the link's other end,
        whose offloads are turned off too."""
        ns = f"{self.name}-{role}"
        mac = sh(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/address"]).strip()
        sh(["ip", "-n", ns, "link", "add", "rl0", "type", "veth", "peer", "name", "rl1"])
        sh(["ip", "-n", ns, "link", "set", "rl1", "address", mac])
        sh(["ip", "netns", "exec", ns, "sh", "-c",
            f"echo 1 > /proc/sys/net/ipv4/conf/{dev}/arp_ignore"])
        sh(["ip", "-n", ns, "link", "set", dev, "address", "02:00:00:00:" + (
            "01:01" if role == "client" else "02:02")])
        for d in (dev, "rl0"):
            sh(["ip", "-n", ns, "link", "set", d, "promisc", "on"])
        for d in ("rl0", "rl1"):
            sh(["ip", "-n", ns, "link", "set", d, "up"])
        sh(self.netns(role, sys.executable, RELAY, "no-offload", "rl1", "rl0", dev))
        if far is not None:
            sh(self.netns(far[0], sys.executable, RELAY, "no-offload", far[1]))
        p = self.spawn(self.netns(role, sys.executable, RELAY, "relay", dev, "rl0", "--seed",
                                  str(self.a.seed_int + self.index)),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=open(os.path.join(self.work, f"relay-{role}.log"), "w"))
        if p.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"relay in {ns} did not start")
        batch = f"addr del {cidr} dev {dev}\naddr add {cidr} dev rl1\n"
        r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch.encode(),
                           capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"moving {cidr} to rl1 in {ns}: {r.stderr.decode()}")
        return p

    def relay_cmd(self, which, line):
        p = self.relays[which]
        p.stdin.write((line + "\n").encode())
        p.stdin.flush()

    # --- faults ---

    def kill(self, which, sig):
        out = self.ftvm("kill", which, "--name", self.name, "--signal", sig, check=False)
        self.event(f"ftvm kill {which} --signal {sig}: {out.strip()}")
        m = re.search(r"host ([ab])", out)
        return m.group(1) if m else None

    def actions(self, f):
        """(offset_s, callable, description) of fault `f`."""
        k, at, d = f["kind"], f["at"], f.get("duration", 0)
        acts = []
        if f.get("protected"):
            acts.append((at, lambda: self.when_protected(f)))
        elif k in ("kill-primary", "kill-backup"):
            acts.append((at, lambda: self.kill(k.split("-")[1], "KILL")))
        elif k in ("stop-primary", "stop-backup"):
            role = k.split("-")[1]

            def stop():
                self.stopped[k] = self.kill(role, "STOP")

            def cont():
                host = self.stopped.get(k)
                if host:
                    self.kill(host, "CONT")
            acts += [(at, stop), (at + d, cont)]
        elif k == "stop-arbiter":
            acts += [(at, lambda: self.kill("arbiter", "STOP")),
                     (at + d, lambda: self.kill("arbiter", "CONT"))]
        elif k == "kill-arbiter":
            acts += [(at, self.kill_arbiter), (at + f["restart_after"], self.restart_arbiter)]
        elif k == "cut-log":
            acts += [(at, lambda: self.link("cut-log")), (at + d, lambda: self.link("heal-log"))]
        elif k == "cut-arb":
            acts += [(at, lambda: self.link("cut-arb", f["host"])),
                     (at + d, lambda: self.link("heal-arb", f["host"]))]
        elif k in ("flap-log", "flap-arb"):
            t = at
            cut, heal = (("cut-log", "heal-log") if k == "flap-log" else ("cut-arb", "heal-arb"))
            extra = (f["host"],) if k == "flap-arb" else ()
            for length in f["flaps"]:
                acts += [(t, lambda: self.link(cut, *extra)),
                         (t + length, lambda: self.link(heal, *extra))]
                t += 2 * length
        elif k in ("log-impair", "lan-impair"):
            which = k.split("-")[0]
            line = "set " + " ".join(f"{kk}={v}" for kk, v in f["impair"].items())

            def on():
                self.relay_cmd(which, line)
                self.event(f"{which} relay: {line}")

            def off():
                self.relay_cmd(which, "clear")
                self.event(f"{which} relay: clear")
            acts += [(at, on), (at + d, off)]
        elif k == "log-rate":
            acts += [(at, lambda: self.rate(f["mbit"])), (at + d, lambda: self.rate(None))]
        elif k in JOIN_FAULTS:
            acts.append((at, lambda: self.join_fault(f)))
        elif k == "stale-primary":
            acts.append((at, self.stale_primary))
        return acts

    def when_protected(self, f):
        """A deposing fault of a long schedule: once the pair is paired
        again (at most 60 s), the fault, its duration included."""
        end = time.monotonic() + 60
        while not self.status().get("paired"):
            if time.monotonic() > end:
                self.problems.append(("protected-again", f"not paired again within 60 s, before "
                                      f"{describe(f)}"))
                return
            time.sleep(0.1)
        k, d = f["kind"], f.get("duration", 0)
        if k in ("kill-primary", "kill-backup"):
            self.kill(k.split("-")[1], "KILL")
        elif k in ("stop-primary", "stop-backup"):
            host = self.kill(k.split("-")[1], "STOP")
            time.sleep(d)
            if host:
                self.kill(host, "CONT")
        elif k == "cut-log":
            self.link("cut-log")
            time.sleep(d)
            self.link("heal-log")
        else:
            self.problems.append(("harness", f"no protected form of {k}"))

    def wait_for_join(self, deadline_s=40.0):
        """The host whose new backup is joining, once the pair's status shows
        a transfer running; None if none started within the deadline."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            st = self.status()
            if st.get("transfer"):
                for host, h in (st.get("hosts") or {}).items():
                    s = h.get("status") or {}
                    if h.get("running") and s.get("role") == "backup" and s.get("state") == "joining":
                        return host
            time.sleep(0.02)
        return None

    def join_fault(self, f):
        k = f["kind"]
        joiner = self.wait_for_join()
        if joiner is None:
            self.event(f"{k}: no join seen within 40 s (it may have completed between looks)")
            self.missed_joins += 1
            return
        self.event(f"{k}: host {joiner}'s new backup is joining")
        primary = "a" if joiner == "b" else "b"
        if k == "kill-joiner":
            self.kill(joiner, "KILL")
        elif k in ("stop-joiner", "stop-primary-mid-join"):
            who = joiner if k == "stop-joiner" else primary
            self.kill(who, "STOP")
            time.sleep(f["duration"])
            self.kill(who, "CONT")
        elif k == "second-joiner":
            self.second_joiner(joiner)

    def stale_primary(self):
        """Host a's original primary command line, started again after a
        deposing fault: the arbiter refuses its old epoch (exit 4), or the
        host's resources are a running node's (exit 2); it never serves."""
        if not self.primary_argv:
            self.problems.append(("harness", "stale primary: host a's command line is unknown"))
            return
        self.refused_run("stale-primary", "pri", self.primary_argv)

    def refused_run(self, what, role, argv):
        out = open(os.path.join(self.work, f"{what}.log"), "ab")
        p = self.spawn(self.netns(role, *argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                       start_new_session=True)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.problems.append((what, f"{what} in {self.name}-{role} was still running after 60 s"))
            return
        self.event(f"{what} in {self.name}-{role}: exit {rc}")
        if rc == 0:
            self.problems.append((what, f"{what} in {self.name}-{role} exited 0 (it should have "
                                  "been refused)"))

    def second_joiner(self, host):
        """Starts the saved backup command of `host` again while its backup
        joins: a second backup process on one host must be refused (the TAP,
        the disk copy and the control socket are the first one's) and change
        nothing."""
        try:
            argv = json.load(open(os.path.join(self.pair_dir, f"{host}.backup.json")))
        except (OSError, ValueError) as e:
            self.problems.append(("harness", f"second joiner: {e}"))
            return
        self.refused_run("second-joiner", "pri" if host == "a" else "bak", argv)

    def link(self, cmd, *args):
        self.ftnet(cmd, self.name, *args)
        self.event(f"ftnet.sh {cmd} {' '.join(args)}".strip())

    def rate(self, mbit):
        ns = f"{self.name}-pri"
        if mbit is None:
            sh(["tc", "-n", ns, "qdisc", "del", "dev", "log0", "root"], check=False)
            self.rate_limited = False
            self.event("logging link rate limit removed")
        else:
            sh(["tc", "-n", ns, "qdisc", "replace", "dev", "log0", "root", "tbf", "rate",
                f"{mbit}mbit", "burst", "32kbit", "latency", "200ms"])
            self.rate_limited = True
            self.event(f"logging link limited to {mbit} Mbit/s (tbf on the primary host's log0)")

    def kill_arbiter(self):
        pid = int(open(os.path.join(self.pair_dir, "arbiter.pid")).read().split()[0])
        self.arbiter_argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
        self.kill("arbiter", "KILL")

    def restart_arbiter(self):
        if not self.arbiter_argv:
            return
        out = open(os.path.join(self.pair_dir, "arbiter.log"), "ab")
        # The recorded argv is `ip netns exec NAME-arb ftvm arbiter ...` after
        # exec, i.e. the arbiter's own; run it in its namespace again.
        # An operator restarts an arbiter on its existing store: without
        # --init, which only ever makes a new store (and refuses an existing one).
        argv = [x.decode() for x in self.arbiter_argv if x != b"--init"]
        p = self.spawn(self.netns("arb", *argv), stdin=subprocess.DEVNULL, stdout=out,
                       stderr=out, start_new_session=True)
        with open(os.path.join(self.pair_dir, "arbiter.pid"), "w") as f:
            f.write(f"{p.pid}\n")
        self.event(f"arbiter started again (pid {p.pid})")

    # --- the run ---

    def run(self):
        a = self.a
        res = {"index": self.index, "faults": self.faults}
        t_start = time.monotonic()
        self.ftvm("down", "--name", self.name, check=False)
        try:
            # Every schedule starts from the guest image's disk (--fresh):
            # its keys' histories begin empty.
            up = ["up", "--name", self.name, "--fresh"]
            if a.timeout_ms is not None:
                up += ["--timeout-ms", str(a.timeout_ms)]
            if not a.reprotect:
                up.append("--no-reprotect")
            elif any(f["kind"] in JOIN_FAULTS for f in self.faults):
                # Slow enough (about 2 s for the 256 MiB guest) for the
                # faults aimed at a join to find one running.
                up += ["--transfer-mbps", "100"]
            self.ftvm(*up, timeout=a.up_timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            self.problems.append(("pair-up", f"ftvm up failed: {str(e).strip()[-400:]}"))
            return res
        res["up_s"] = round(time.monotonic() - t_start, 1)
        try:
            pid = int(open(os.path.join(self.pair_dir, "a.pid")).read().split()[0])
            self.primary_argv = [x.decode() for x in
                                 open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]]
        except (OSError, ValueError, IndexError):
            self.primary_argv = None
        wall_start_ms = time.time_ns() // 1_000_000
        audit_out = os.path.join(self.work, "lan-audit.json")
        audit = self.spawn(self.netns("lan", sys.executable, SELF, "lan-audit", "--out", audit_out),
                           stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if audit.stdout.readline().strip() != b"ready":
            raise RuntimeError("the LAN audit did not start")
        kinds = {f["kind"] for f in self.faults}
        if "lan-impair" in kinds:
            self.relays["lan"] = self.splice_relay("client", "eth0", LAN_CIDR)
        if "log-impair" in kinds:
            self.relays["log"] = self.splice_relay("bak", "log0", LOG_CIDR, far=("pri", "log0"))
        before = self.status()
        res["before"] = summarize_status(before)
        if not (res["before"].get("a", {}).get("state") == "paired" and
                res["before"].get("b", {}).get("role") == "backup"):
            self.problems.append(("pair-up", f"not paired before the faults: {res['before']}"))
        hist_out = os.path.join(self.work, "history.json")
        last_end = max(fault_end(f) for f in self.faults)
        duration = a.warmup + last_end + a.recovery
        wl = self.spawn(self.netns("client", sys.executable, SELF, "workload", "--out", hist_out,
                                   "--duration", str(duration), "--clients", str(a.clients),
                                   "--keys", str(a.keys), "--seed", str(a.seed_int + self.index),
                                   "--think-ms", str(a.think_ms),
                                   "--request-timeout", str(a.request_timeout)),
                        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = wl.stdout.readline()
        t0 = json.loads(line)["started"] / 1e9 + a.warmup  # the fault window's start
        acts = sorted((t for f in self.faults for t in self.actions(f)), key=lambda x: x[0])
        for off, fn in acts:
            delay = t0 + off - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                fn()
            except Exception as e:  # a fault that cannot be made is the harness's problem
                self.problems.append(("harness", f"fault action failed: {e}"))
        t_heal = time.monotonic_ns()
        self.event("faults over")
        if self.rate_limited:
            self.rate(None)
        try:
            wl.wait(timeout=duration + 3 * a.request_timeout + 60)
        except subprocess.TimeoutExpired:
            wl.kill()
            self.problems.append(("serves-again", "the workload did not end"))
        audit.send_signal(signal.SIGTERM)
        audit.wait(timeout=30)
        after = self.status()
        res["after"] = summarize_status(after)
        for which, p in self.relays.items():
            p.stdin.close()
            p.wait(timeout=10)
        res["events"] = [(round(t / 1e9 - t0, 3), w) for t, w in self.events]
        try:
            hist = json.load(open(hist_out))
        except (OSError, ValueError) as e:
            self.problems.append(("client-errors", f"no history from the workload: {e}"))
            return res
        lan = json.load(open(audit_out)) if os.path.exists(audit_out) else {"runs": []}
        # The epochs taken during this run, on the LAN audit's clock.
        offset = time.time_ns() - time.monotonic_ns()
        takes = [(e["at_unix_ms"] * 1_000_000 - offset, e["host"], e["epoch"], e["kind"])
                 for e in (after.get("history") or [])
                 if e.get("at_unix_ms", 0) >= wall_start_ms and e.get("kind") != "reprotect"]
        res["history"] = [(round((t - t0 * 1e9) / 1e9, 3), h, ep, k) for t, h, ep, k in takes]
        judge(hist, lan, t_heal, a, res, self.problems, takes)
        if a.reprotect:
            res["reprotections"] = sum(1 for e in (after.get("history") or [])
                                       if e.get("kind") == "reprotect"
                                       and e.get("at_unix_ms", 0) >= wall_start_ms)
            res["missed_joins"] = self.missed_joins
            # protected-again: the pair is paired again after the last fault.
            end = time.monotonic() + 60
            while not after.get("paired") and time.monotonic() < end:
                time.sleep(0.5)
                after = self.status()
            if not after.get("paired"):
                self.problems.append(("protected-again", "not paired again 60 s after the workload: "
                                      f"{summarize_status(after)}"))
        return res

    def cleanup(self):
        for p in self.relays.values():
            if p.poll() is None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        # Nodes left stopped would not hear ftvm down's SIGTERM.
        for host in ("a", "b", "arbiter"):
            self.ftvm("kill", host, "--name", self.name, "--signal", "CONT", check=False)
        self.ftvm("down", "--name", self.name, check=False, timeout=180)

    def keep_logs(self, dest):
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(self.pair_dir) if os.path.isdir(self.pair_dir) else []:
            if f.endswith((".log", ".console")):
                shutil.copy(os.path.join(self.pair_dir, f), dest)
        for f in os.listdir(self.work):
            shutil.copy(os.path.join(self.work, f), dest)


def summarize_status(st):
    out = {}
    for host, h in (st.get("hosts") or {}).items():
        s = h.get("status") or {}
        out[host] = {"running": h.get("running"), "role": s.get("role"), "state": s.get("state"),
                     "epoch": s.get("epoch")}
        if s.get("last_failover"):
            out[host]["last_failover"] = s["last_failover"]
    if "arbiter" in st:
        out["arbiter_running"] = st["arbiter"].get("running")
    return out


def judge(hist, lan, t_heal, a, res, problems, takes=()):
    ops, errors = hist["ops"], hist["errors"]
    answered = [o for o in ops if o.get("ret") is not None and "error" not in o]
    res["ops"] = len(ops)
    res["answered"] = len(answered)
    res["info"] = sum(1 for o in ops if o.get("ret") is None)
    # client-errors
    for e in errors[:5]:
        problems.append(("client-errors", f"client {e['client']} "
                         f"({'persistent' if e.get('persistent') else 'per-request'}) {e['op']}: "
                         f"{e['message']} at {(e['t'] - t_heal) / 1e9:+.2f} s from the last fault's end"))
    if len(errors) > 5:
        problems.append(("client-errors", f"... {len(errors)} client errors in all"))
    # linearizable
    lin_ops = [o for o in ops if o["op"] in ("set", "get", "incr")]
    origin = hist.get("started", 0)
    verdicts = lin.check_history(lin_ops, budget=a.budget, origin=origin)
    res["linearizable"] = {k: v[0] for k, v in verdicts.items()}
    for k, (v, detail) in verdicts.items():
        if v != lin.OK:
            problems.append(("linearizable", f"key {k}: {v}: {detail}"))
    # acked-writes
    if hist["final"] is None:
        problems.append(("serves-again", "the final read failed"))
    else:
        for k in hist["keys"]:
            for p in lin.audit_acked_writes([o for o in ops if o["key"] == k and o["client"] != "final"],
                                            hist["final"].get(k), origin):
                problems.append(("acked-writes", f"key {k}: {p}"))
    # lan-epochs
    runs = lan.get("runs", [])
    seen, order = set(), []
    for port, first, last, n in runs:
        if order and order[-1] == port:
            continue
        host = "host-a" if port == "pri" else "host-b"
        if port in seen and a.reprotect:
            # With re-protection a host may send again, but only once it has
            # taken an epoch after the other host's latest takeover before
            # this run (the history's time is written just after going live,
            # after its first gratuitous ARP: 0.5 s of grace).
            grace = 500_000_000
            other = [t for t, h, _, _ in takes if h != host and t <= first + grace]
            retook = other and any(h == host and t > max(other) and t <= first + grace
                                   for t, h, _, _ in takes)
            if not retook:
                problems.append(("lan-epochs", f"host {port} sent {n} guest frames from "
                                 f"{(first - t_heal) / 1e9:+.3f} s (from the last fault's end) "
                                 f"without having taken an epoch after the other host's"))
        elif port in seen:
            prev = [r for r in runs if r[0] != port and r[1] < first]
            problems.append(("lan-epochs", f"host {port} sent {n} guest frames from "
                             f"{(first - t_heal) / 1e9:+.3f} s (from the last fault's end) after host "
                             f"{prev[-1][0] if prev else '?'} had taken over"))
        seen.add(port)
        order.append(port)
    res["lan_hosts"] = order
    # serves-again
    later = [o["ret"] for o in answered if o["ret"] >= t_heal]
    if not later:
        problems.append(("serves-again", "no request succeeded after the faults ended"))
    else:
        res["served_again_s"] = round((min(later) - t_heal) / 1e9, 3)
        if res["served_again_s"] > a.serve_deadline:
            problems.append(("serves-again", f"first success {res['served_again_s']} s after the "
                             f"faults ended (deadline {a.serve_deadline} s)"))


# --- the campaign ---------------------------------------------------------------


def load_results(path):
    done = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line:
                r = json.loads(line)
                done[r["index"]] = r
    return done


def run_one(a, index, out_dir):
    faults = make_schedule(a.seed, index, a.window, a.reprotect)
    log(f"schedule {index}: " + "; ".join(describe(f) for f in faults))
    work = os.path.join(out_dir, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run = Run(a, index, faults, work)
    t = time.monotonic()
    res = {"index": index, "faults": faults}
    try:
        res = run.run()
    except Exception as e:
        run.problems.append(("harness", f"{type(e).__name__}: {e}"))
    finally:
        run.cleanup()
    res["seed"] = a.seed
    res["elapsed_s"] = round(time.monotonic() - t, 1)
    res["problems"] = [{"judge": j, "detail": d} for j, d in run.problems]
    res["verdict"] = "pass" if not run.problems else "fail"
    if run.problems:
        dest = os.path.join(out_dir, str(index))
        shutil.rmtree(dest, ignore_errors=True)
        run.keep_logs(dest)
        res["kept"] = dest
    shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("workload", "lan-audit"):
        mode = sys.argv.pop(1)
        ap = argparse.ArgumentParser(prog=f"campaign.py {mode}")
        ap.add_argument("--out", required=True)
        if mode == "workload":
            ap.add_argument("--duration", type=float, required=True)
            ap.add_argument("--clients", type=int, default=8)
            ap.add_argument("--keys", type=int, default=5)
            ap.add_argument("--seed", type=int, default=0)
            ap.add_argument("--think-ms", type=float, default=20)
            ap.add_argument("--request-timeout", type=float, default=15)
            return workload_main(ap.parse_args())
        return lan_audit_main(ap.parse_args())

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schedules", type=int, default=10, help="schedules 0..N-1 (default 10)")
    ap.add_argument("--seed", type=int, default=1, help="the campaign's seed (default 1)")
    ap.add_argument("--first", type=int, default=0,
                    help="start at schedule I (schedules I..N-1; default 0)")
    ap.add_argument("--only", type=int, default=None, help="run schedule I alone")
    ap.add_argument("--resume", action="store_true", help="skip schedules already in the results")
    ap.add_argument("--out", default=None, help="results directory (default bench/results/campaign-S)")
    ap.add_argument("--name", default="camp", help="pair name: namespaces NAME-* (default camp)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--keys", type=int, default=5)
    ap.add_argument("--think-ms", type=float, default=20, help="a client's pause between requests, "
                    "uniform in 0..MS (default 20)")
    ap.add_argument("--warmup", type=float, default=3, help="seconds of load before the faults")
    ap.add_argument("--window", type=float, default=10, help="seconds in which faults start")
    ap.add_argument("--recovery", type=float, default=10, help="seconds of load after the last")
    ap.add_argument("--timeout-ms", type=int, default=None,
                    help="ftvm up --timeout-ms (default: ftvm up's own default)")
    ap.add_argument("--request-timeout", type=float, default=15,
                    help="seconds a client waits for a reply before it counts as an error")
    ap.add_argument("--serve-deadline", type=float, default=10,
                    help="seconds after the faults within which a request must succeed")
    ap.add_argument("--budget", type=int, default=2_000_000, help="search steps per key")
    ap.add_argument("--up-timeout", type=float, default=400)
    ap.add_argument("--ftvm", default=os.path.join(ROOT, "build", "ftvm"))
    ap.add_argument("--reprotect", action="store_true",
                    help="run the pairs with re-protection on (ftvm up without --no-reprotect): a "
                    "deposed host rejoins as a new backup by state transfer, and may send on the "
                    "LAN again once it has taken a later epoch (the lan-epochs judge reads the "
                    "pair's history)")
    ap.add_argument("--print-schedules", action="store_true",
                    help="print the schedules and exit (no pair is started)")
    a = ap.parse_args()
    if not re.fullmatch(r"[a-z0-9]{1,8}", a.name):
        ap.error("--name: 1 to 8 lower-case letters or digits")
    a.seed_int = a.seed * 1_000_003
    if not 0 <= a.first < a.schedules:
        ap.error(f"--first {a.first}: must be below --schedules {a.schedules}")
    indexes = [a.only] if a.only is not None else list(range(a.first, a.schedules))
    if a.print_schedules:
        for i in indexes:
            print(f"{i}: " + "; ".join(describe(f) for f in make_schedule(a.seed, i, a.window, a.reprotect)))
        return 0
    if os.geteuid() != 0:
        ap.error("run as root (network namespaces)")
    out_dir = a.out or os.path.join(ROOT, "bench", "results", f"campaign-{a.seed}")
    os.makedirs(out_dir, exist_ok=True)
    results_path = os.path.join(out_dir, "results.jsonl")
    done = load_results(results_path) if a.resume else {}
    if not a.resume and a.only is None and os.path.exists(results_path):
        os.rename(results_path, results_path + ".old")

    def on_term(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    log(f"campaign seed {a.seed}, schedules {indexes[0]}..{indexes[-1]}; results in {results_path}")
    results = {}
    try:
        for i in indexes:
            if i in done:
                results[i] = done[i]
                continue
            r = run_one(a, i, out_dir)
            results[i] = r
            with open(results_path, "a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"schedule {i}: {r['verdict'].upper()} ({r['elapsed_s']} s, {r.get('answered', 0)} "
                  f"replies, {r.get('info', 0)} without) "
                  + "; ".join(describe(f) for f in r["faults"]), flush=True)
            for p in r["problems"]:
                print(f"    {p['judge']}: {p['detail']}", flush=True)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    failed = [r for r in results.values() if r["verdict"] != "pass"]
    print(f"\ncampaign seed {a.seed}: {len(results)} schedules, {len(results) - len(failed)} passed, "
          f"{len(failed)} failed")
    for r in sorted(failed, key=lambda r: r["index"]):
        judges = sorted({p["judge"] for p in r["problems"]})
        print(f"  FAILED schedule {r['index']} ({', '.join(judges)}): rerun with "
              f"bench/campaign.py --seed {a.seed} --only {r['index']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
