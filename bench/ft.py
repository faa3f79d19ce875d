#!/usr/bin/env python3
"""The FT pair against the same guest without FT, in one invocation.

Four measurements, all against Redis in the guest at 10.77.0.15, every
client in a namespace the project makes (nothing leaves them):

  throughput  redis-benchmark -c 50 -t set,get --csv (requests/s, p50, p99)
              on an FT pair (`ftvm up`) and on the same guest without FT
              (`ftvm run --net --lan L --disk COPY --append
              ftvm.service=redis`, COPY a fresh copy of the image's data
              disk, as each host of the pair has: Redis fsyncs its
              append-only file before every reply in both), each on
              a fresh machine, alternating (FT first in even repetitions,
              non-FT first in odd ones); medians over the repetitions. Also
              one client (-c 1), where p50 is a round trip rather than a
              queue, to show the latency the Output Rule adds.
  failover    per trial: `ftvm up`; ftvm-redis-load with 4 connections from
              the client namespace; about 3 s into its writes, `ftvm kill
              primary`; the load runs on a few seconds, then verifies every
              acknowledged key. Failover time = end of the reply silence
              that contains the kill (the first reply on any connection
              after it, from the load tool's --gaps-over-ms list, 1 ms by
              default) minus the kill time, taken as the wall-clock time
              when `ftvm kill` returned (it asks both nodes for their role,
              signals the primary and returns once it is gone; the time
              from its start is also recorded, so the kill is bracketed). Also: when every connection was
              served again (the tool's longest per-connection stall, when it
              spans the kill), and when the new primary went live (its
              last_failover). Each trial must report ok (no error, every
              connection up, every acknowledged key read back) with the
              other host now primary.
  lag         on a fresh pair: `ftvm status --json` sampled at ~10 Hz during
              a redis-benchmark run (not one of the throughput runs); the
              primary's lag.guest_ms and lag.bytes.
  bandwidth   the primary's log.channel_bytes over the status documents'
              uptime_seconds: idle (no client, --idle seconds) and during
              that redis-benchmark run; in Mbit/s.
  steady      false failovers: a fresh pair (`--timeout-ms`) under
              redis-benchmark -c 50 in a loop for --steady-seconds; no
              fault is injected, so every epoch after the first is a false
              failover. Also each node's peer.longest_silence_ms: the longest
              gap between two messages from its peer, i.e. how close the
              load brought the pair to the timeout.

Results: a summary on stdout, progress on stderr, everything in
bench/results/ft-<date>.json; node logs of any failed trial are copied to
bench/results/ft-<date>-logs/. Everything started is stopped on exit, error
or Ctrl-C (ftvm down; the non-FT ftvm by PID; scripts/netns.sh down).

Usage: bench/ft.py [--trials N] [--reps N] [--requests N] [--quick]
                   [--only throughput,lag,failover,steady] [--kill-signal KILL|STOP]
                   [--name PREFIX] [--ftvm build/ftvm] [--load build/ftvm-redis-load]
(--help lists the rest.) Exit status 1 when anything misbehaved (see the
PROBLEMS lines of the summary and "problems" in the JSON).
"""
import argparse
import csv
import datetime
import io
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FTNET = os.path.join(ROOT, "scripts", "ftnet.sh")
NETNS = os.path.join(ROOT, "scripts", "netns.sh")
GUEST_IP = "10.77.0.15"
DONE_KEY = "ftvm-bench-done"
# The non-FT guest's command: wait until the bench says it is done.
GUEST_CMD = (f"i=0; until [ \"$(redis-cli get {DONE_KEY} 2>/dev/null)\" = 1 ] || [ $i -ge 3000 ]; "
             "do sleep 0.2; i=$((i+1)); done")


def guest_dir():
    """The guest image's directory, as ftvm finds it."""
    return os.path.join(os.environ.get("FTVM_CACHE") or "/var/cache/ftvm", "guest", "current")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(args, timeout=300, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): "
                           f"{r.stderr.decode(errors='replace')[-2000:]}")
    return r.stdout.decode(errors="replace")


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


class Bench:
    def __init__(self, args):
        self.a = args
        self.pairs = set()      # FT pairs that may be up
        self.lans = set()       # non-FT LANs that may exist
        self.procs = []         # processes started here, stopped by PID
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.results_dir = os.path.join(ROOT, "bench", "results")
        self.out_json = os.path.join(self.results_dir, f"ft-{stamp}.json")
        self.logs_dir = os.path.join(self.results_dir, f"ft-{stamp}-logs")
        self.work = os.path.join(self.results_dir, f"ft-{stamp}-work")
        os.makedirs(self.work, exist_ok=True)
        self.problems = []      # misbehaviour seen, for the summary
        self.up_failures = 0

    # --- the two machines ----------------------------------------------------

    def ftvm(self, *args, timeout=300, check=True):
        return sh([self.a.ftvm, *args], timeout=timeout, check=check)

    def ft_up(self, name):
        self.pairs.add(name)
        for attempt in (1, 2):
            t0 = time.monotonic()
            try:
                timeout = ["--timeout-ms", str(self.a.timeout_ms)] if self.a.timeout_ms else []
                if self.a.max_lag_ms:
                    timeout += ["--max-lag-ms", str(self.a.max_lag_ms)]
                self.ftvm("up", "--name", name, *timeout, "--fresh", "--no-reprotect",
                          timeout=400)
                return time.monotonic() - t0
            except Exception as e:
                # Recorded as a problem, with the pair's logs; one retry.
                self.up_failures += 1
                dst = self.keep_logs(name, f"up-failure-{self.up_failures}")
                self.problems.append(f"ftvm up --name {name} failed (attempt {attempt}): "
                                     f"{str(e).strip().splitlines()[-2:]}; logs in {dst}")
                log(f"ftvm up --name {name} failed; logs kept in {dst}")
                self.ft_down(name)
                self.pairs.add(name)
                if attempt == 2:
                    raise

    def ft_down(self, name):
        self.ftvm("down", "--name", name, timeout=120, check=False)
        self.pairs.discard(name)

    def ft_status(self, name):
        return json.loads(self.ftvm("status", "--name", name, "--json", timeout=30))

    @staticmethod
    def primary_of(status):
        for host, h in (status.get("hosts") or {}).items():
            s = h.get("status") or {}
            if h.get("running") and s.get("role") == "primary":
                return host, s
        return None, None

    def ft_client(self, name):
        return ["bash", FTNET, "exec", name, "client"]

    def nonft_start(self, lan):
        self.lans.add(lan)
        console = open(os.path.join(self.work, f"{lan}.console"), "wb")
        # The same disk as each host of a pair: a fresh copy of the guest
        # image's data disk, so Redis keeps its append-only file here too.
        disk = os.path.join(self.work, f"{lan}.img")
        sh(["cp", "--sparse=always", os.path.join(guest_dir(), "data.img"), disk])
        p = subprocess.Popen([self.a.ftvm, "run", "--net", "--lan", lan, "--disk", disk, "--append",
                              "ftvm.service=redis", "--", GUEST_CMD], stdin=subprocess.DEVNULL, stdout=console,
                             stderr=subprocess.STDOUT)
        console.close()
        self.procs.append(p)
        client = ["bash", NETNS, "exec-client", lan]
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if p.poll() is not None:
                raise RuntimeError(f"non-FT ftvm exited {p.returncode}; see {self.work}/{lan}.console")
            # netns.sh up runs inside ftvm run; the client namespace may not exist yet.
            out = sh([*client, "redis-cli", "-h", GUEST_IP, "ping"], timeout=10, check=False)
            if "PONG" in out:
                return p, client
            time.sleep(0.2)
        raise RuntimeError("Redis in the non-FT guest never answered PING")

    def nonft_stop(self, p, lan):
        sh(["bash", NETNS, "exec-client", lan, "redis-cli", "-h", GUEST_IP, "set", DONE_KEY, "1"],
           timeout=10, check=False)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log(f"non-FT ftvm (pid {p.pid}) did not power off; killing it")
            p.kill()
            p.wait()
        if p in self.procs:
            self.procs.remove(p)
        sh(["bash", NETNS, "down", lan], timeout=60, check=False)
        self.lans.discard(lan)

    def cleanup(self):
        for p in list(self.procs):
            if p.poll() is None:
                log(f"stopping pid {p.pid}")
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        for name in list(self.pairs):
            log(f"ftvm down --name {name}")
            self.ft_down(name)
        for lan in list(self.lans):
            log(f"scripts/netns.sh down {lan}")
            sh(["bash", NETNS, "down", lan], timeout=60, check=False)
            self.lans.discard(lan)

    # --- redis-benchmark ----------------------------------------------------

    @staticmethod
    def redis_benchmark(client, clients, requests):
        out = sh([*client, "redis-benchmark", "-h", GUEST_IP, "-c", str(clients), "-n", str(requests),
                  "-t", "set,get", "--csv"], timeout=900)
        res = {}
        for row in csv.reader(io.StringIO(out)):
            if row and row[0] in ("SET", "GET"):
                res[row[0]] = {"rps": float(row[1]), "avg_ms": float(row[2]),
                               "p50_ms": float(row[4]), "p99_ms": float(row[6]),
                               "max_ms": float(row[7])}
        if set(res) != {"SET", "GET"}:
            raise RuntimeError(f"unexpected redis-benchmark output:\n{out}")
        return res

    def bench_both(self, client):
        return {"c50": self.redis_benchmark(client, 50, self.a.requests),
                "c1": self.redis_benchmark(client, 1, self.a.requests_c1)}

    def throughput(self):
        runs = {"ft": [], "nonft": []}
        for rep in range(self.a.reps):
            order = ["ft", "nonft"] if rep % 2 == 0 else ["nonft", "ft"]
            for kind in order:
                if kind == "ft":
                    name = f"{self.a.name}t"
                    up_s = self.ft_up(name)
                    try:
                        r = self.bench_both(self.ft_client(name))
                        st = self.ft_status(name)
                        _, ps = self.primary_of(st)
                        if ps is None or ps.get("state") != "paired":
                            self.problems.append(f"throughput rep {rep + 1}: FT primary not paired "
                                                 f"after the run: {ps}")
                        r["up_s"] = up_s
                    finally:
                        self.ft_down(name)
                else:
                    lan = f"{self.a.name}n"
                    p, client = self.nonft_start(lan)
                    try:
                        r = self.bench_both(client)
                    finally:
                        self.nonft_stop(p, lan)
                r["loadavg"] = os.getloadavg()[0]
                runs[kind].append(r)
                log(f"throughput rep {rep + 1}/{self.a.reps} {kind}: "
                    + ", ".join(f"{op} {r['c50'][op]['rps']:.0f}/s p50 {r['c50'][op]['p50_ms']:.3f} ms "
                                f"p99 {r['c50'][op]['p99_ms']:.3f} ms" for op in ("SET", "GET"))
                    + "; -c 1: " + ", ".join(f"{op} p50 {r['c1'][op]['p50_ms']:.3f} ms"
                                             for op in ("SET", "GET")))
        med = {}
        for kind in runs:
            med[kind] = {c: {op: {k: statistics.median(r[c][op][k] for r in runs[kind])
                                  for k in ("rps", "p50_ms", "p99_ms")}
                             for op in ("SET", "GET")} for c in ("c50", "c1")}
        return {"runs": runs, "median": med}

    # --- lag and log bandwidth ------------------------------------------------

    def lag_and_bandwidth(self):
        name = f"{self.a.name}l"
        self.ft_up(name)
        try:
            time.sleep(2)  # let the guest settle after Redis first answered
            st = self.ft_status(name)
            pids = {h: v.get("pid") for h, v in st["hosts"].items()}
            _, s0 = self.primary_of(st)
            c0 = cpu_seconds(pids)
            time.sleep(self.a.idle)
            c1 = cpu_seconds(pids)
            _, s1 = self.primary_of(self.ft_status(name))
            if s0 is None or s1 is None:
                raise RuntimeError(f"no primary in pair {name} while idle")
            idle_dt = s1["uptime_seconds"] - s0["uptime_seconds"]
            idle_bytes = s1["log"]["channel_bytes"] - s0["log"]["channel_bytes"]
            idle = {"seconds": idle_dt, "channel_bytes": idle_bytes,
                    "mbit_per_s": idle_bytes * 8 / idle_dt / 1e6,
                    "records": s1["log"]["records"] - s0["log"]["records"],
                    "cpu_fraction": {h: (c1[h] - c0[h]) / idle_dt for h in pids}}
            log(f"idle: {idle['mbit_per_s']:.3f} Mbit/s over {idle_dt:.1f} s "
                f"({idle['records']} records)")

            samples = []
            stop = threading.Event()

            def sampler():
                while not stop.is_set():
                    t = time.monotonic()
                    try:
                        _, s = self.primary_of(self.ft_status(name))
                        if s is not None:
                            samples.append({"t": time.time(), "uptime_seconds": s["uptime_seconds"],
                                            "state": s.get("state"), "lag": s.get("lag", {}),
                                            "channel_bytes": s["log"]["channel_bytes"],
                                            "mbit_per_s": s["log"]["mbit_per_s"],
                                            "held_outputs": s["held"]["outputs"]})
                    except Exception as e:  # a sample lost is not the run lost
                        samples.append({"t": time.time(), "error": str(e)})
                    stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

            th = threading.Thread(target=sampler, daemon=True)
            th.start()
            c0, w0 = cpu_seconds(pids), time.monotonic()
            try:
                bench = self.redis_benchmark(self.ft_client(name), 50, self.a.requests)
            finally:
                c1, w1 = cpu_seconds(pids), time.monotonic()
                stop.set()
                th.join(timeout=10)
            good = [s for s in samples if "lag" in s and "guest_ms" in s["lag"]]
            if len(good) < 2:
                raise RuntimeError(f"too few status samples under load ({len(samples)})")
            lag_ms = [s["lag"]["guest_ms"] for s in good]
            lag_b = [s["lag"]["bytes"] for s in good]
            dt = good[-1]["uptime_seconds"] - good[0]["uptime_seconds"]
            db = good[-1]["channel_bytes"] - good[0]["channel_bytes"]
            load = {"seconds": dt, "channel_bytes": db, "mbit_per_s": db * 8 / dt / 1e6,
                    "peak_1s_mbit_per_s": max(s["mbit_per_s"] for s in good),
                    "redis_benchmark": bench,
                    # Host CPU used by each node (a core = 1.0) during the run.
                    "cpu_fraction": {h: (c1[h] - c0[h]) / (w1 - w0) for h in pids}}
            lag = {"samples": len(good), "sample_errors": len(samples) - len(good),
                   "sample_hz": (len(good) - 1) / (good[-1]["t"] - good[0]["t"]),
                   "guest_ms": {"p50": pct(lag_ms, 50), "p90": pct(lag_ms, 90), "p99": pct(lag_ms, 99),
                                "max": max(lag_ms)},
                   "bytes": {"p50": pct(lag_b, 50), "p90": pct(lag_b, 90), "p99": pct(lag_b, 99),
                             "max": max(lag_b)},
                   "states": sorted({s["state"] for s in good})}
            log(f"under load: {load['mbit_per_s']:.2f} Mbit/s; lag p99 {lag['guest_ms']['p99']:.1f} guest ms, "
                f"{lag['bytes']['p99']} bytes ({lag['samples']} samples at {lag['sample_hz']:.1f} Hz)")
            return {"idle": idle, "load": load, "lag": lag, "samples": samples}
        finally:
            self.ft_down(name)

    # --- failover -----------------------------------------------------------

    def keep_logs(self, name, what):
        src = f"/run/ftvm/{name}"
        dst = os.path.join(self.logs_dir, what if isinstance(what, str) else f"trial{what + 1}")
        os.makedirs(dst, exist_ok=True)
        for f in os.listdir(src) if os.path.isdir(src) else []:
            if f.endswith((".log", ".console")):
                shutil.copy(os.path.join(src, f), dst)
        return dst

    # --- false failovers under load ------------------------------------------

    def steady(self):
        name = f"{self.a.name}s"
        self.ft_up(name)
        try:
            st0 = self.ft_status(name)
            host0, p0 = self.primary_of(st0)
            if p0 is None:
                raise RuntimeError(f"no primary in pair {name}")
            end = time.monotonic() + self.a.steady_seconds
            runs, rps = 0, []
            while time.monotonic() < end:
                r = self.redis_benchmark(self.ft_client(name), 50, self.a.requests)
                runs += 1
                rps.append(r["SET"]["rps"])
            st1 = self.ft_status(name)
            host1, p1 = self.primary_of(st1)
            silence = {}
            for h, v in (st1.get("hosts") or {}).items():
                s = v.get("status") or {}
                silence[h] = (s.get("peer") or {}).get("longest_silence_ms")
            epochs = (p1 or {}).get("epoch", 0) - p0.get("epoch", 0)
            rec = {"seconds": self.a.steady_seconds, "timeout_ms": self.a.timeout_ms or "default",
                   "benchmark_runs": runs, "set_rps_median": statistics.median(rps),
                   "primary_before": host0, "primary_after": host1,
                   "false_failovers": epochs, "longest_silence_ms": silence,
                   "history": st1.get("history")}
            log(f"steady: {runs} redis-benchmark runs over {self.a.steady_seconds:.0f} s at "
                f"--timeout-ms {self.a.timeout_ms or 'default'}: {epochs} false failovers; longest silence "
                + ", ".join(f"{h} {v} ms" for h, v in silence.items()))
            if epochs != 0 or host1 != host0:
                self.problems.append(f"steady: {epochs} epochs taken with no fault injected "
                                     f"(primary {host0} -> {host1})")
            return rec
        finally:
            self.ft_down(name)

    def failover_trial(self, trial):
        name = f"{self.a.name}f"
        rec = {"trial": trial + 1, "loadavg": os.getloadavg()[0]}
        out_file = os.path.join(self.work, f"load-{trial + 1}.json")
        err_file = os.path.join(self.work, f"load-{trial + 1}.stderr")
        rec["up_s"] = self.ft_up(name)
        load = None
        try:
            before = self.ft_status(name)
            old_host, old = self.primary_of(before)
            rec["before"] = {"primary": old_host, "epoch": old and old.get("epoch"),
                             "state": old and old.get("state")}
            errf = open(err_file, "wb")
            load = subprocess.Popen(
                [*self.ft_client(name), os.path.abspath(self.a.load), "--host", GUEST_IP,
                 "--connections", "4", "--duration", str(self.a.kill_after + self.a.after_kill),
                 "--wait-ready", "30", "--gaps-over-ms", str(self.a.gap_ms),
                 "--key-prefix", f"t{trial + 1}", "--out", out_file],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
            errf.close()
            self.procs.append(load)
            # Wait for the write phase to start (the "ready" line), then kill.
            end = time.monotonic() + 60
            while b"ready after" not in open(err_file, "rb").read():
                if load.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"ftvm-redis-load never got ready; see {err_file}")
                time.sleep(0.02)
            time.sleep(self.a.kill_after)
            t_before = time.time_ns()
            kill = sh([self.a.ftvm, "kill", "primary", "--name", name, "--signal", self.a.kill_signal],
                      timeout=30, check=False)
            t_after = time.time_ns()
            # `ftvm kill` asks both nodes for their role, then signals the
            # primary and exits: the kill is at most about a millisecond
            # before t_after, and t_before is some milliseconds earlier.
            rec["kill_cmd_start_unix_ns"] = t_before
            rec["kill_unix_ns"] = t_after
            rec["kill_cmd_ms"] = (t_after - t_before) / 1e6
            try:
                load.wait(timeout=self.a.kill_after + self.a.after_kill + 120)
                rec["load_exit"] = load.returncode
            except subprocess.TimeoutExpired:
                rec["load_exit"] = None
                rec["load_hung"] = True
                load.send_signal(signal.SIGINT)
                try:
                    load.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    load.kill()
                    load.wait()
            self.procs.remove(load)
            rep = json.load(open(out_file)) if os.path.exists(out_file) else None
            rec["load"] = rep
            if rep is not None:
                # The silence that contains the kill, ended by the first reply after it.
                gap = next((g for g in rep.get("gaps", []) if g["start_unix_ns"] <= t_after
                            < g["end_unix_ns"]), None)
                rec["gap"] = gap
                if gap is None:
                    # A reply came within --gap-ms on both sides of t_after.
                    rec["failover_ms"] = self.a.gap_ms
                    rec["failover_within_gap_ms"] = True
                elif gap["end"] == "reply":
                    rec["failover_ms"] = (gap["end_unix_ns"] - t_after) / 1e6
                    rec["failover_ms_from_kill_cmd_start"] = (gap["end_unix_ns"] - t_before) / 1e6
                # The longest stall of one connection, if it spans the kill:
                # when the last of the connections was served again.
                st0 = rep["start_unix_ns"] + rep["stall_start_s"] * 1e9
                st1 = st0 + rep["max_stall_ms"] * 1e6
                if st0 <= t_after < st1:
                    rec["all_connections_back_ms"] = (st1 - t_after) / 1e6
                else:
                    # The stall across the kill was shorter than the longest
                    # one, which bounds it.
                    rec["all_connections_back_ms"] = rep["max_stall_ms"]
                    rec["all_connections_back_is_bound"] = True
            after = self.ft_status(name)
            new_host, new = self.primary_of(after)
            rec["after"] = {"primary": new_host, "epoch": new and new.get("epoch"),
                            "state": new and new.get("state"),
                            "last_failover": new and new.get("last_failover")}
            lf = rec["after"]["last_failover"] or {}
            if "at_unix_ms" in lf:
                # When the new primary went live (ms resolution), from the kill.
                rec["live_after_kill_ms"] = lf["at_unix_ms"] - t_after / 1e6
            rec["ok"] = bool(rep and rep["ok"] and new_host is not None and new_host != old_host
                             and rep["verify"]["ok"] == rep["acked"] and rep["acked"] > 0)
            if not rec["ok"]:
                rec["logs"] = self.keep_logs(name, trial)
                self.problems.append(
                    f"failover trial {trial + 1} failed: kill said {kill.strip()!r}; load exit "
                    f"{rec.get('load_exit')}, ok {rep and rep['ok']}, errors "
                    f"{rep and rep['errors']}, verify {rep and rep['verify']}, gap {rec.get('gap')}, "
                    f"new primary {new_host} {rec['after']}; logs in {rec['logs']}")
            return rec
        finally:
            if load is not None and load.poll() is None:
                load.terminate()
                load.wait()
            if load in self.procs:
                self.procs.remove(load)
            self.ft_down(name)

    def failover(self):
        trials = []
        for t in range(self.a.trials):
            rec = self.failover_trial(t)
            trials.append(rec)
            lf = (rec.get("after") or {}).get("last_failover") or {}
            rep = rec.get("load") or {}
            log(f"failover trial {t + 1}/{self.a.trials}: "
                f"{'ok' if rec['ok'] else 'FAILED'}, first reply after the kill "
                f"{rec.get('failover_ms', float('nan')):.1f} ms, all connections "
                f"{rec.get('all_connections_back_ms', float('nan')):.1f} ms "
                f"(silence {lf.get('silence_ms')}, claim {lf.get('claim_ms')}, replay {lf.get('replay_ms')} ms, "
                f"{lf.get('replayed_records')} records); acked {rep.get('acked')}, "
                f"verify {rep.get('verify')}, max_stall {rep.get('max_stall_ms')} ms")
        ms = [r["failover_ms"] for r in trials if r.get("failover_ms") is not None]
        summary = {"trials": len(trials), "ok": sum(r["ok"] for r in trials), "measured": len(ms),
                   "within_gap_ms": sum(1 for r in trials if r.get("failover_within_gap_ms"))}
        allb = [r["all_connections_back_ms"] for r in trials if "all_connections_back_ms" in r]
        if allb:
            summary["all_connections_back"] = {"n": len(allb), "bounds": sum(
                1 for r in trials if r.get("all_connections_back_is_bound")), "median_ms": statistics.median(allb),
                                               "p90_ms": pct(allb, 90), "p99_ms": pct(allb, 99),
                                               "max_ms": max(allb)}
        if ms:
            summary.update({"median_ms": statistics.median(ms), "p90_ms": pct(ms, 90),
                            "p99_ms": pct(ms, 99), "max_ms": max(ms), "min_ms": min(ms),
                            "kill_cmd_ms_median": statistics.median(r["kill_cmd_ms"] for r in trials
                                                                     if "kill_cmd_ms" in r)})
            live = [r for r in trials if "live_after_kill_ms" in r and r.get("failover_ms") is not None]
            summary["failover_over_100_ms"] = sum(1 for x in ms if x > 100)
            if live:
                summary["live_after_kill_ms_median"] = statistics.median(r["live_after_kill_ms"] for r in live)
                summary["live_after_kill_ms_max"] = max(r["live_after_kill_ms"] for r in live)
                summary["first_reply_after_live_ms_median"] = statistics.median(
                    r["failover_ms"] - r["live_after_kill_ms"] for r in live)
            summary["failover_over_250_ms"] = sum(1 for x in ms if x > 250)
            for k in ("silence_ms", "claim_ms", "replay_ms", "detect_to_live_ms", "replayed_records"):
                v = [r["after"]["last_failover"][k] for r in trials
                     if (r.get("after") or {}).get("last_failover") and k in r["after"]["last_failover"]]
                if v:
                    summary[f"last_failover_{k}_median"] = statistics.median(v)
                    summary[f"last_failover_{k}_max"] = max(v)
        return {"summary": summary, "trials": trials}


def cpu_seconds(pids):
    """User + system CPU seconds of each process {key: pid}."""
    out = {}
    for k, pid in pids.items():
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            out[k] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            out[k] = float("nan")
    return out


def machine_info(ftvm):
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = open("/proc/meminfo").readline().split()[1]
    except OSError:
        pass
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False).strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_kib": mem, "kernel": platform.release(),
            "commit": commit, "loadavg_at_start": os.getloadavg(),
            "redis_benchmark": sh(["redis-benchmark", "--version"], check=False).strip(),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def summary_text(res, a):
    lines = []
    m = res.get("machine", {})
    lines.append(f"machine: {m.get('cpus')} CPUs ({m.get('cpu')}), commit {m.get('commit')}, {m.get('date')}")
    if "throughput" in res:
        med = res["throughput"]["median"]
        n = len(res["throughput"]["runs"]["ft"])
        lines.append("")
        lines.append(f"| redis-benchmark, {a.requests} requests (median of {n}) | FT | non-FT | FT / non-FT |")
        lines.append("|---|---|---|---|")
        for op in ("SET", "GET"):
            f, n_ = med["ft"]["c50"][op], med["nonft"]["c50"][op]
            lines.append(f"| {op}, 50 clients (requests/s) | {f['rps']:.0f} | {n_['rps']:.0f} | "
                         f"{f['rps'] / n_['rps']:.2f} |")
            lines.append(f"| {op}, 50 clients, p50 / p99 latency (ms) | {f['p50_ms']:.3f} / {f['p99_ms']:.3f} | "
                         f"{n_['p50_ms']:.3f} / {n_['p99_ms']:.3f} | +{(f['p50_ms'] - n_['p50_ms']) * 1000:.0f} µs p50 |")
        for op in ("SET", "GET"):
            f, n_ = med["ft"]["c1"][op], med["nonft"]["c1"][op]
            lines.append(f"| {op}, 1 client, p50 latency (ms) [{a.requests_c1} requests] | {f['p50_ms']:.3f} | "
                         f"{n_['p50_ms']:.3f} | +{(f['p50_ms'] - n_['p50_ms']) * 1000:.0f} µs |")
    if "failover" in res:
        s = res["failover"]["summary"]
        lines.append("")
        lines.append(f"failover, kill -> first reply on any connection ({s['trials']} trials, {s['ok']} ok, "
                     f"{s['measured']} measured, {s['within_gap_ms']} within --gap-ms): "
                     + (f"median {s['median_ms']:.0f} ms, p90 {s['p90_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms "
                        f"(nearest rank; with {s['measured']} trials p99 is the max), max {s['max_ms']:.0f} ms, "
                        f"min {s['min_ms']:.0f} ms; kill command {s['kill_cmd_ms_median']:.1f} ms (median)"
                        if s["measured"] else "nothing measured"))
        if s.get("all_connections_back"):
            ab = s["all_connections_back"]
            lines.append(f"  kill -> every connection served again ({ab['n']} trials; in {ab['bounds']} the "
                         f"longest stall was elsewhere and is used as a bound): median {ab['median_ms']:.0f} ms, p90 {ab['p90_ms']:.0f}, "
                         f"p99 {ab['p99_ms']:.0f}, max {ab['max_ms']:.0f} ms")
        if s.get("live_after_kill_ms_median") is not None:
            lines.append(f"  kill -> new primary live (its last_failover.at_unix_ms): median "
                         f"{s['live_after_kill_ms_median']:.0f} ms, max {s['live_after_kill_ms_max']:.0f} ms; "
                         f"live -> first reply: median {s['first_reply_after_live_ms_median']:.0f} ms; "
                         f"{s['failover_over_100_ms']} trials over 100 ms, {s['failover_over_250_ms']} over 250 ms")
        if s.get("last_failover_silence_ms_median") is not None:
            lines.append("  new primary's last_failover, medians: "
                         + ", ".join(f"{k} {s.get(f'last_failover_{k}_median')}"
                                     for k in ("silence_ms", "claim_ms", "replay_ms", "detect_to_live_ms",
                                               "replayed_records")))
    if "lag_bw" in res:
        lb = res["lag_bw"]
        lines.append("")
        lines.append(f"log bandwidth: idle {lb['idle']['mbit_per_s']:.3f} Mbit/s ({lb['idle']['seconds']:.1f} s); "
                     f"under redis-benchmark -c 50 {lb['load']['mbit_per_s']:.2f} Mbit/s average, "
                     f"{lb['load']['peak_1s_mbit_per_s']:.2f} peak 1-s")
        if "cpu_fraction" in lb["load"]:
            lines.append("host CPU of the nodes (1.0 = a core): idle "
                         + ", ".join(f"{h} {v:.2f}" for h, v in lb["idle"]["cpu_fraction"].items())
                         + "; under load " + ", ".join(f"{h} {v:.2f}" for h, v in lb["load"]["cpu_fraction"].items()))
        g, b = lb["lag"]["guest_ms"], lb["lag"]["bytes"]
        lines.append(f"backup lag under load ({lb['lag']['samples']} samples at {lb['lag']['sample_hz']:.1f} Hz): "
                     f"guest ms p50 {g['p50']:.2f} p99 {g['p99']:.2f} max {g['max']:.2f}; "
                     f"bytes p50 {b['p50']} p99 {b['p99']} max {b['max']}")
    if "steady" in res:
        st = res["steady"]
        lines.append("")
        lines.append(f"no fault, redis-benchmark -c 50 for {st['seconds']:.0f} s "
                     f"({st['benchmark_runs']} runs, SET median {st['set_rps_median']:.0f}/s) at "
                     f"--timeout-ms {st['timeout_ms']}: {st['false_failovers']} false failovers; "
                     "longest silence heard: "
                     + ", ".join(f"{h} {v:.1f} ms" if v is not None else f"{h} n/a"
                                 for h, v in st["longest_silence_ms"].items()))
    if res.get("problems"):
        lines.append("")
        lines.append("PROBLEMS:")
        lines += [f"  {p}" for p in res["problems"]]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20, help="failover trials (default 20)")
    ap.add_argument("--reps", type=int, default=3, help="throughput repetitions per machine (default 3)")
    ap.add_argument("--requests", type=int, default=50000, help="redis-benchmark -n with 50 clients")
    ap.add_argument("--requests-c1", type=int, default=5000, help="redis-benchmark -n with 1 client")
    ap.add_argument("--idle", type=float, default=12, help="seconds of idle bandwidth measurement")
    ap.add_argument("--kill-after", type=float, default=3, help="seconds of load before the kill")
    ap.add_argument("--after-kill", type=float, default=5, help="seconds of load after it")
    ap.add_argument("--kill-signal", default="KILL", choices=["KILL", "STOP"],
                    help="KILL (default): the process dies and the kernel closes its sockets; STOP: it "
                         "freezes, so the backup notices only by silence (--timeout-ms)")
    ap.add_argument("--steady-seconds", type=float, default=120,
                    help="steady: seconds of load with no fault (default 120)")
    ap.add_argument("--gap-ms", type=float, default=1, help="ftvm-redis-load --gaps-over-ms (default 1)")
    ap.add_argument("--timeout-ms", type=int, default=None,
                    help="ftvm up --timeout-ms (default: ftvm up's own, 300)")
    ap.add_argument("--max-lag-ms", type=int, default=None,
                    help="ftvm up --max-lag-ms, the backup lag bound (default: ftvm up's own)")
    ap.add_argument("--name", default="bf1", help="prefix of the pair and LAN names (at most 6 characters)")
    ap.add_argument("--only", default="throughput,lag,failover",
                    help="comma-separated subset of throughput,lag,failover")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 repetition, 5000 requests, 2 failover trials, 3 s idle")
    ap.add_argument("--ftvm", default=os.path.join(ROOT, "build", "ftvm"))
    ap.add_argument("--load", default=os.path.join(ROOT, "build", "ftvm-redis-load"))
    a = ap.parse_args()
    if a.quick:
        a.trials, a.reps, a.requests, a.requests_c1, a.idle = 2, 1, 5000, 1000, 3
    if len(a.name) > 6 or not a.name.isalnum() or not a.name.islower():
        ap.error("--name: 1 to 6 lower-case letters or digits")
    if os.geteuid() != 0:
        ap.error("run as root (network namespaces)")

    def on_term(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    b = Bench(a)
    only = set(a.only.split(","))
    res = {"command": " ".join(["bench/ft.py", *sys.argv[1:]]), "machine": machine_info(a.ftvm),
           "options": vars(a)}
    log(f"results will be in {b.out_json}")
    try:
        if "throughput" in only:
            res["throughput"] = b.throughput()
        if "lag" in only:
            res["lag_bw"] = b.lag_and_bandwidth()
        if "failover" in only:
            res["failover"] = b.failover()
        if "steady" in only:
            res["steady"] = b.steady()
    except KeyboardInterrupt:
        b.problems.append("interrupted")
        log("interrupted; cleaning up")
    except Exception as e:
        b.problems.append(f"error: {e}")
        log(f"error: {e}; cleaning up")
        raise
    finally:
        b.cleanup()
        res["problems"] = b.problems
        res["machine"]["loadavg_at_end"] = os.getloadavg()
        with open(b.out_json, "w") as f:
            json.dump(res, f, indent=1)
        print(summary_text(res, a))
        print(f"\nresults: {b.out_json}")
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
