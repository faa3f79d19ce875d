// ftvm-sim: the deterministic simulator (docs/sim.md).
//
//   ftvm-sim --seed N [--verbose [--trace-steps]]   one seed, traced with --verbose
//   ftvm-sim --seeds COUNT [--from N]               seeds N .. N+COUNT-1
//            [--jobs J] [--progress FILE] [--keep-going]
//   either with [--nodes ft|standin] [--bug NAME] [--fault-seconds S]
//
// Exit status: 0 when every invariant held in every seed run, 1 when one
// broke (the seed and the first broken invariant are printed, with the
// command that replays it), 2 on bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include <sys/resource.h>

#include "sim/guest_image.h"
#include "sim/world.h"

namespace {

using namespace ftvm::sim;
using Clock = std::chrono::steady_clock;

constexpr int kExitBroken = 1;
constexpr int kExitUsage = 2;

void print_breach(const RunOutcome& o, const std::string& args) {
  std::printf("seed %llu: invariant %s broken at %.6f s: %s\n",
              static_cast<unsigned long long>(o.seed), o.breach->invariant.c_str(),
              static_cast<double>(o.breach->at) / kSecond, o.breach->detail.c_str());
  std::printf("replay: ftvm-sim --seed %llu%s --verbose\n", static_cast<unsigned long long>(o.seed),
              args.c_str());
}

// The progress file: "next <seed>\nend <seed>\nfailed <seed> <invariant>..."
// lines; `next` is the first seed not yet known to pass.
struct Progress {
  uint64_t next = 0;
  uint64_t end = 0;
  std::vector<std::string> failures;
};

bool read_progress(const std::string& path, Progress& p) {
  std::ifstream in(path);
  if (!in) return false;
  std::string word;
  bool have_next = false, have_end = false;
  while (in >> word) {
    if (word == "next") {
      have_next = static_cast<bool>(in >> p.next);
    } else if (word == "end") {
      have_end = static_cast<bool>(in >> p.end);
    } else if (word == "failed") {
      std::string rest;
      std::getline(in, rest);
      p.failures.push_back(rest);
    }
  }
  return have_next && have_end;
}

bool write_progress(const std::string& path, const Progress& p) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << "next " << p.next << "\nend " << p.end << "\n";
    for (const std::string& f : p.failures) out << "failed" << f << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ftvm-sim: the FT protocol under simulated faults, deterministic per seed"};
  std::optional<uint64_t> seed;
  std::optional<uint64_t> seeds;
  uint64_t from = 0;
  bool verbose = false;
  bool keep_going = false;
  unsigned jobs = 1;
  std::string progress_path;
  std::string bug_name = "none";
  double fault_seconds = 1.0;
  app.add_option("--seed", seed, "Run this one seed");
  app.add_option("--seeds", seeds, "Run this many seeds, from --from");
  app.add_option("--from", from, "The first seed of --seeds (default 0)");
  app.add_flag("--verbose,-v", verbose, "Trace the schedule (with --seed)");
  bool trace_steps = false;
  app.add_flag("--trace-steps", trace_steps, "With --verbose: also every step of every FT node");
  std::string nodes_name = "ft";
  app.add_option("--nodes", nodes_name,
                 "ft: the FT core's primary and backup (default); standin: the stand-in node");
  app.add_option("--jobs,-j", jobs, "Seeds run in parallel (default 1)")->check(CLI::Range(1u, 256u));
  app.add_option("--progress", progress_path,
                 "Record progress in FILE and resume from it (with --seeds)");
  app.add_flag("--keep-going", keep_going, "Go on after a broken seed (with --seeds)");
  app.add_option("--bug", bug_name,
                 "Run with a deliberate bug: none, lose-writes, split-brain, forgetful-arbiter");
  std::string reprotect_name = "seed";
  app.add_option("--reprotect", reprotect_name,
                 "FT pair: a new backup joins the running primary after each failure: on, off, "
                 "or seed (drawn per seed: on in three of four; default)");
  int hosts = 0;
  app.add_option("--hosts", hosts,
                 "FT pair: 2 hosts, or 3 (a third host's backup competes to join); default: drawn "
                 "per seed (3 in one of four)")
      ->check(CLI::Range(2, 3));
  app.add_option("--fault-seconds", fault_seconds, "Simulated seconds of faults per seed (default 1)")
      ->check(CLI::Range(0.0, 3600.0));
  std::string engine_name;
  app.add_option("--engine", engine_name,
                 "How the guest machines execute: interp or jit (default: jit on x86-64 hosts)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (!engine_name.empty()) {
    ftvm::vm::Engine e;
    if (!ftvm::vm::parse_engine(engine_name.c_str(), e)) {
      std::fprintf(stderr, "ftvm-sim: unknown --engine '%s' (use interp or jit)\n", engine_name.c_str());
      return kExitUsage;
    }
    if (e == ftvm::vm::Engine::kJit && !ftvm::vm::jit_supported()) {
      std::fprintf(stderr, "ftvm-sim: --engine jit needs an x86-64 host; use --engine interp\n");
      return kExitUsage;
    }
    ftvm::sim::set_guest_engine(e);
  }
  if (seed.has_value() == seeds.has_value()) {
    std::fprintf(stderr, "ftvm-sim: give exactly one of --seed N or --seeds COUNT\n");
    return kExitUsage;
  }
  if (seed && (app.count("--from") || !progress_path.empty() || keep_going || jobs != 1)) {
    std::fprintf(stderr, "ftvm-sim: --from, --progress, --keep-going and --jobs go with --seeds\n");
    return kExitUsage;
  }
  if (seeds && verbose) {
    std::fprintf(stderr, "ftvm-sim: --verbose traces one seed: use it with --seed\n");
    return kExitUsage;
  }
  const std::optional<Bug> bug = parse_bug(bug_name);
  if (!bug) {
    std::fprintf(stderr, "ftvm-sim: unknown --bug %s\n", bug_name.c_str());
    return kExitUsage;
  }
  if (seeds && *seeds > 0 && from > ~0ull - *seeds) {
    std::fprintf(stderr, "ftvm-sim: --from + --seeds overflows\n");
    return kExitUsage;
  }

  const auto t0 = Clock::now();
  auto image = GuestImage::boot();
  if (!image) {
    std::fprintf(stderr, "ftvm-sim: %s\n", image.error().c_str());
    return kExitBroken;
  }
  WorldOptions base;
  base.bug = *bug;
  if (nodes_name == "standin") {
    base.nodes = NodeKind::kStandIn;
  } else if (nodes_name != "ft") {
    std::fprintf(stderr, "ftvm-sim: --nodes is ft or standin, not %s\n", nodes_name.c_str());
    return kExitUsage;
  }
  if (reprotect_name == "on" || reprotect_name == "off") {
    base.reprotect = reprotect_name == "on";
  } else if (reprotect_name != "seed") {
    std::fprintf(stderr, "ftvm-sim: --reprotect is on, off or seed, not %s\n",
                 reprotect_name.c_str());
    return kExitUsage;
  }
  if (hosts != 0) base.hosts = hosts;
  base.trace_steps = trace_steps;
  base.fault_end = static_cast<Time>(fault_seconds * kSecond);
  // What a replay of a seed needs besides --seed.
  std::string bug_arg;
  if (*bug != Bug::kNone) bug_arg += " --bug " + bug_name;
  if (*bug == Bug::kNone && base.nodes == NodeKind::kStandIn) bug_arg += " --nodes standin";
  if (base.reprotect) bug_arg += fmt::format(" --reprotect {}", reprotect_name);
  if (base.hosts) bug_arg += fmt::format(" --hosts {}", hosts);
  if (app.count("--fault-seconds")) bug_arg += fmt::format(" --fault-seconds {}", fault_seconds);

  if (seed) {
    WorldOptions o = base;
    o.seed = *seed;
    o.verbose = verbose;
    const RunOutcome out = run_seed(**image, o);
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::printf("seed %llu: %s (%llu ops, %llu completed, %llu events, %llu frames, %llu guest "
                "instructions, newest epoch %llu, %llu re-protections, %.1f ms with the boot, fingerprint "
                "%016llx)\n",
                static_cast<unsigned long long>(*seed), out.ok() ? "ok" : "BROKEN",
                static_cast<unsigned long long>(out.stats.operations),
                static_cast<unsigned long long>(out.stats.completed),
                static_cast<unsigned long long>(out.stats.events),
                static_cast<unsigned long long>(out.stats.frames),
                static_cast<unsigned long long>(out.stats.guest_instructions),
                static_cast<unsigned long long>(out.stats.newest_epoch),
                static_cast<unsigned long long>(out.stats.reprotections), ms,
                static_cast<unsigned long long>(out.fingerprint));
    if (!out.ok()) {
      print_breach(out, bug_arg);
      return kExitBroken;
    }
    return 0;
  }

  Progress progress{from, from + *seeds, {}};
  if (!progress_path.empty()) {
    Progress saved;
    if (read_progress(progress_path, saved)) {
      if (saved.end != progress.end || saved.next < from || saved.next > progress.end) {
        std::fprintf(stderr,
                     "ftvm-sim: %s records seeds up to %llu, not this run's %llu..%llu: remove it "
                     "or use another file\n",
                     progress_path.c_str(), static_cast<unsigned long long>(saved.end),
                     static_cast<unsigned long long>(from),
                     static_cast<unsigned long long>(progress.end));
        return kExitUsage;
      }
      progress = saved;
      // Seeds from `next` on run again: forget what they did last time.
      std::erase_if(progress.failures, [&](const std::string& f) {
        return std::strtoull(f.c_str(), nullptr, 10) >= progress.next;
      });
      std::printf("resuming at seed %llu (%zu failed so far)\n",
                  static_cast<unsigned long long>(progress.next), progress.failures.size());
    }
  }

  // Workers take seeds in order; results are committed in seed order so
  // the progress file's `next` only passes seeds that have run.
  std::mutex mu;
  uint64_t next_to_take = progress.next;
  std::map<uint64_t, RunOutcome> done;
  std::optional<RunOutcome> first_broken;
  uint64_t ran = 0, broken = 0;
  uint64_t with_failover = 0, with_reprotection = 0, reprotections = 0;
  uint64_t combined = 0;  // the sum of the seeds' fingerprints: independent of --jobs
  std::atomic<bool> stop{false};
  auto last_write = Clock::now();
  auto worker = [&] {
    for (;;) {
      uint64_t s;
      {
        std::lock_guard lock(mu);
        if (stop || next_to_take >= progress.end) return;
        s = next_to_take++;
      }
      WorldOptions o = base;
      o.seed = s;
      RunOutcome out = run_seed(**image, o);
      std::lock_guard lock(mu);
      ++ran;
      combined += out.fingerprint;
      if (out.stats.newest_epoch > 1) ++with_failover;
      if (out.stats.reprotections > 0) ++with_reprotection;
      reprotections += out.stats.reprotections;
      if (!out.ok()) {
        ++broken;
        print_breach(out, bug_arg);
        std::fflush(stdout);
        progress.failures.push_back(fmt::format(" {} {}", s, out.breach->invariant));
        if (!first_broken || s < first_broken->seed) first_broken = out;
        if (!keep_going) stop = true;
      }
      done.emplace(s, std::move(out));
      while (!done.empty() && done.begin()->first == progress.next) {
        done.erase(done.begin());
        ++progress.next;
      }
      if (!progress_path.empty() && Clock::now() - last_write > std::chrono::seconds(2)) {
        write_progress(progress_path, progress);
        last_write = Clock::now();
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 0; j < jobs; ++j) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  if (!progress_path.empty() && !write_progress(progress_path, progress)) {
    std::fprintf(stderr, "ftvm-sim: cannot write %s\n", progress_path.c_str());
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf("%llu seeds run (%llu..%llu), %llu broken, %llu served in a later epoch, %llu "
              "re-protected (%llu joins of a running primary), %.1f s, %.2f ms of CPU per seed, "
              "fingerprint %016llx\n",
              static_cast<unsigned long long>(ran), static_cast<unsigned long long>(from),
              static_cast<unsigned long long>(progress.end - 1),
              static_cast<unsigned long long>(broken),
              static_cast<unsigned long long>(with_failover),
              static_cast<unsigned long long>(with_reprotection),
              static_cast<unsigned long long>(reprotections), secs,
              ran ? cpu * 1000.0 / static_cast<double>(ran) : 0.0,
              static_cast<unsigned long long>(combined));
  if (broken > 0 || !progress.failures.empty()) {
    if (first_broken) std::printf("first broken: seed %llu (%s)\n",
                                  static_cast<unsigned long long>(first_broken->seed),
                                  first_broken->breach->invariant.c_str());
    return kExitBroken;
  }
  return 0;
}
