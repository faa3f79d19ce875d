// `ftvm run` (see run_command.h).
#include "cli/run_command.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "ft/disk_faults.h"
#include "ft/live_input.h"
#include "ft/record_replay.h"
#include "hostio/block_file.h"
#include "hostio/disk_copy.h"
#include "hostio/entropy.h"
#include "hostio/netns.h"
#include "hostio/snapshot_file.h"
#include "hostio/tap.h"
#include "hostio/terminal.h"
#include "util/file.h"
#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::cli {

Result<vm::Engine> engine_from_option(const std::string& text) {
  if (text.empty()) return vm::default_engine();
  vm::Engine e;
  if (!vm::parse_engine(text.c_str(), e)) {
    return make_error(fmt::format("unknown --engine '{}' (use interp or jit)", text));
  }
  if (e == vm::Engine::kJit && !vm::jit_supported()) {
    return make_error("--engine jit needs an x86-64 host; use --engine interp");
  }
  return e;
}
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint8_t kEscapeKey = 0x01;  // Ctrl-A, then 'x' quits
constexpr uint64_t kSliceInstructions = 4'000'000;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''"; else out += c;
  }
  return out + "'";
}

std::string hex_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

std::string default_guest_dir() {
  if (const char* dir = std::getenv("FTVM_GUEST_DIR"); dir != nullptr && *dir) return dir;
  const char* cache = std::getenv("FTVM_CACHE");
  return std::string(cache != nullptr && *cache ? cache : "/var/cache/ftvm") + "/guest/current";
}

int run_command(const RunOptions& o) {
  auto bad = [](const std::string& msg) {
    fmt::print(stderr, "ftvm: {}\n", msg);
    return kExitBadInput;
  };
  if (o.memory_mib < 16 || o.memory_mib > 16384) {
    return bad(fmt::format("--memory {} MiB is out of range (16 to 16384)", o.memory_mib));
  }
  vm::MachineConfig config;
  config.ram_size = o.memory_mib << 20;
  config.engine = o.engine;
  std::unique_ptr<hostio::FileBlockBackend> disk;
  if (!o.disk.empty()) {
    Result<std::unique_ptr<hostio::FileBlockBackend>> d =
        hostio::FileBlockBackend::open(o.disk, o.disk_read_only);
    if (!d) return bad(d.error());
    disk = std::move(*d);
    config.disk = disk.get();
  }
  // The live run's randomness (hostio/entropy.h): the device tree's rng-seed
  // and the source behind virtio-rng; neither with --entropy none.
  std::unique_ptr<vm::EntropySource> entropy = hostio::entropy_source_for(o.entropy);
  config.rng_seed = hostio::rng_seed_for(o.entropy);
  // The entropy device reaches its source through `entropy_target`, so a
  // recording wrapper that needs the machine can be put in between.
  vm::EntropySource* entropy_target = entropy.get();
  struct ForwardEntropy final : vm::EntropySource {
    vm::EntropySource** target;
    explicit ForwardEntropy(vm::EntropySource** t) : target(t) {}
    void fill(std::span<uint8_t> out) override { (*target)->fill(out); }
  } forward_entropy(&entropy_target);
  if (entropy) config.entropy = &forward_entropy;
  if (!o.record.empty() && !o.elf.empty()) return bad("--record works with Linux guests, not --elf");
  // A recorded guest that writes its disk: the replay needs the contents it
  // started from, kept beside the log before the guest can change them.
  std::string disk_start_copy;
  if (!o.record.empty() && !o.disk.empty() && !o.disk_read_only) {
    disk_start_copy = o.record + ".disk";
    Result<hostio::DiskCopy> c = hostio::copy_disk_image(o.disk, disk_start_copy);
    if (!c) return bad(c.error());
    fmt::print(stderr, "ftvm: the disk's starting contents are kept in {} for replay ({}, {} bytes)\n",
               disk_start_copy, c->reflinked ? "a reflink" : "a copy",
               c->reflinked ? c->bytes : c->copied_bytes);
  }
  std::string append = o.append;
  std::string tap_name = o.tap;
  if (o.net) {
    if (!tap_name.empty()) return bad("--net and --tap are alternatives: give one");
    if (Status s = hostio::ensure_lan(o.lan); !s) return bad(s.error());
    if (Status s = hostio::enter_netns(o.lan + "-host"); !s) return bad(s.error());
    tap_name = "tap0";
    if (append.find("ftvm.net=") == std::string::npos) {
      append += std::string(append.empty() ? "" : " ") + "ftvm.net=" + hostio::kLanGuestCidr;
    }
    fmt::print(stderr,
               "ftvm: guest LAN '{}': the guest is {}; reach it from the client namespace, e.g.\n"
               "ftvm:   {} exec-client {} redis-cli -h {} ping\n",
               o.lan, hostio::kLanGuestAddress, hostio::netns_script(), o.lan,
               hostio::kLanGuestAddress);
  }
  std::unique_ptr<hostio::Tap> tap;
  if (!tap_name.empty()) {
    Result<std::unique_ptr<hostio::Tap>> t = hostio::Tap::open(tap_name);
    if (!t) return bad(t.error());
    tap = std::move(*t);
    config.net_mac = vm::kDefaultGuestMac;
    if (!o.mac.empty()) {
      config.net_mac = vm::parse_mac(o.mac);
      if (!config.net_mac) return bad(fmt::format("--mac {}: not a MAC address", o.mac));
    }
  }
  vm::Machine machine(config);
  std::unique_ptr<ft::Recorder> recorder;
  std::unique_ptr<ft::RecordingEntropy> recording_entropy;

  const bool linux_guest = o.elf.empty();
  std::optional<log::Header> machine_header;  // names this machine in snapshots
  if (!o.restore.empty()) {
    if (!o.elf.empty() || !o.command.empty() || !o.kernel.empty() || !o.record.empty()) {
      return bad("--restore resumes a saved machine: it takes no --elf, --kernel, --record or "
                 "command");
    }
    Result<vm::SnapshotInfo> info = hostio::load_snapshot_into(o.restore, machine);
    if (!info) return bad(info.error());
    machine_header = info->machine;
    fmt::print(stderr, "ftvm: resumed {} at instret {}\n", o.restore, info->instret);
  } else if (!linux_guest) {
    if (!o.command.empty()) return bad("a command after -- needs a Linux guest, not --elf");
    Result<std::vector<uint8_t>> elf = read_file(o.elf, "ELF");
    if (!elf) return bad(elf.error());
    if (Status s = machine.load_elf(*elf); !s) return bad(fmt::format("{}: {}", o.elf, s.error()));
  } else {
    const std::string dir = default_guest_dir();
    std::string kernel_path = o.kernel.empty() ? dir + "/Image" : o.kernel;
    std::string initrd_path = o.initrd;
    if (initrd_path.empty() && o.kernel.empty()) initrd_path = dir + "/initramfs.cpio.gz";
    if (o.kernel.empty() && access(kernel_path.c_str(), R_OK) != 0) {
      return bad(fmt::format("no guest image at {} (build it with guest/build.sh, or pass "
                             "--kernel and --initrd)",
                             dir));
    }
    Result<std::vector<uint8_t>> kernel = read_file(kernel_path, "kernel");
    if (!kernel) return bad(kernel.error());
    std::vector<uint8_t> initrd;
    if (!initrd_path.empty()) {
      Result<std::vector<uint8_t>> r = read_file(initrd_path, "initrd");
      if (!r) return bad(r.error());
      initrd = std::move(*r);
      // A gzip initramfs must at least carry its 18-byte header and trailer.
      if (initrd.size() >= 2 && initrd[0] == 0x1f && initrd[1] == 0x8b && initrd.size() < 18) {
        return bad(fmt::format("initrd '{}' is truncated ({} bytes)", initrd_path, initrd.size()));
      }
    }
    std::string cmdline = "console=ttyS0";
    if (!o.command.empty()) {
      std::string joined;
      for (const std::string& word : o.command) {
        if (!joined.empty()) joined += ' ';
        joined += o.command.size() == 1 ? word : shell_quote(word);
      }
      cmdline += " quiet ftvm.cmd=" + hex_encode(joined);
    }
    if (!append.empty()) cmdline += " " + append;
    if (Status s = machine.load_linux(*kernel, initrd, cmdline); !s) {
      return bad(fmt::format("{}: {}", kernel_path, s.error()));
    }
    if (!o.record.empty() || o.snapshot_at) {
      ft::MachineSpec spec;
      spec.kernel_path = kernel_path;
      spec.initrd_path = initrd_path;
      spec.disk_path = disk_start_copy.empty() ? o.disk : disk_start_copy;
      spec.disk_writable = !disk_start_copy.empty();
      spec.ram_size = config.ram_size;
      spec.cmdline = cmdline;
      spec.entropy = entropy != nullptr;
      spec.rng_seed = config.rng_seed;
      if (config.net_mac) spec.net_mac = vm::format_mac(*config.net_mac);
      Result<log::Header> header = ft::make_header(spec);
      if (!header) return bad(header.error());
      machine_header = *header;
    }
    if (!o.record.empty()) {
      Result<std::unique_ptr<ft::Recorder>> r =
          ft::Recorder::create(o.record, *machine_header, o.hash_interval);
      if (!r) return bad(r.error());
      recorder = std::move(*r);
      if (entropy) {
        recording_entropy = std::make_unique<ft::RecordingEntropy>(*entropy, *recorder, machine);
        entropy_target = recording_entropy.get();
      }
    }
  }

  // A host I/O error of the disk completes in the guest with IOERR; a
  // recording logs it, so the replay's guest sees the same.
  ft::LiveDiskFaults disk_faults([&recorder, &machine](log::DiskError e) {
    if (recorder) (void)recorder->disk_error(machine.instret(), std::move(e));
  });
  machine.set_disk_faults(&disk_faults);

  const bool interactive = linux_guest && o.command.empty() && isatty(STDIN_FILENO);
  std::string out;
  machine.set_console_sink([&out, &recorder](uint8_t b) {
    out.push_back(static_cast<char>(b));
    if (recorder) recorder->console_output(b);
  });
  uint64_t tx_errors = 0;
  machine.set_frame_sink([&tap, &recorder, &tx_errors](std::span<const uint8_t> frame) {
    if (recorder) recorder->frame_output(frame);
    if (tap && !tap->write_frame(frame)) ++tx_errors;
  });
  ft::RxQueue rx_queue;
  auto flush = [&out] {
    if (!out.empty()) {
      hostio::write_all(STDOUT_FILENO, out);
      out.clear();
    }
  };

  std::optional<hostio::RawTerminal> raw;
  if (interactive) {
    fmt::print(stderr, "ftvm: booting; press Ctrl-A then X to quit\n");
    raw.emplace(STDIN_FILENO);
  }
  std::string input;
  bool input_open = interactive;
  bool escape = false;
  bool quit = false;

  const auto start = Clock::now();
  int exit_code = 0;
  bool snapshot_taken = false;
  ft::GuestPacer<Clock::time_point> pacer;
  pacer.restart(start, machine.mtime());  // pacing is relative to where we started
  uint64_t limit = o.max_instructions.value_or(~0ull);
  for (;;) {
    const uint64_t left = limit - machine.instret();
    if (left == 0) {
      flush();
      fmt::print(stderr, "\nftvm: stopped after {} instructions (--max-instructions)\n",
                 machine.instret());
      exit_code = kExitMaxInstructions;
      break;
    }
    uint64_t budget = std::min(left, kSliceInstructions);
    if (o.snapshot_at && !snapshot_taken) {
      if (machine.instret() == *o.snapshot_at) {
        const auto t0 = Clock::now();
        vm::SnapshotInfo info;
        info.machine = *machine_header;
        info.machine.ram_size = machine.bus().ram_size();
        info.instret = machine.instret();
        if (recorder) {
          if (Status s = recorder->flush(); !s) {
            fmt::print(stderr, "\nftvm: recording failed: {}\n", s.error());
            exit_code = kExitMachineError;
            break;
          }
          info.machine.metadata[ft::kSnapshotLogRecordsKey] =
              std::to_string(recorder->records_written());
        }
        const std::span<const uint8_t> ram(machine.bus().ram(), machine.bus().ram_size());
        if (Status s = hostio::save_snapshot(o.snapshot_file, info, machine.capture(), ram); !s) {
          flush();
          fmt::print(stderr, "\nftvm: snapshot failed: {}\n", s.error());
          exit_code = kExitMachineError;
          break;
        }
        struct stat st {};
        stat(o.snapshot_file.c_str(), &st);
        fmt::print(stderr, "ftvm: snapshot at instret {} saved to {} ({} bytes, {:.3f} s)\n",
                   machine.instret(), o.snapshot_file, static_cast<uint64_t>(st.st_size),
                   std::chrono::duration<double>(Clock::now() - t0).count());
        snapshot_taken = true;
      } else if (machine.instret() < *o.snapshot_at) {
        budget = std::min(budget, *o.snapshot_at - machine.instret());
      }
    }
    const vm::RunResult r = machine.run(budget);
    flush();

    if (input_open) {
      std::string typed;
      input_open = hostio::read_available(STDIN_FILENO, typed);
      for (char c : typed) {
        const auto b = static_cast<uint8_t>(c);
        if (escape) {
          escape = false;
          if (b == 'x' || b == 'X') quit = true;
          else input.push_back(static_cast<char>(b));
        } else if (b == kEscapeKey) {
          escape = true;
        } else {
          input.push_back(static_cast<char>(b));
        }
      }
    }
    if (quit) {
      fmt::print(stderr, "\r\nftvm: quit by user\r\n");
      break;
    }
    if (r.status == vm::RunStatus::kPowerOff) {
      exit_code = static_cast<int>(machine.exit_status() & 0xff);
      break;
    }
    if (r.status == vm::RunStatus::kReset) {
      fmt::print(stderr, "\nftvm: the guest asked for a reboot; stopping\n");
      break;
    }
    if (r.status == vm::RunStatus::kError) {
      fmt::print(stderr, "\nftvm: machine stopped: {}\n", machine.error());
      exit_code = kExitMachineError;
      break;
    }
    if (recorder) {
      if (Status s = recorder->maybe_checkpoint(machine); !s) {
        fmt::print(stderr, "\nftvm: recording failed: {}\n", s.error());
        exit_code = kExitMachineError;
        break;
      }
    }
    size_t fed = 0;
    while (fed < input.size() && machine.console_can_accept()) {
      (void)machine.push_console_input(static_cast<uint8_t>(input[fed]));
      ++fed;
    }
    if (recorder && fed > 0) {
      (void)recorder->console_input(
          machine.instret(), {reinterpret_cast<const uint8_t*>(input.data()), fed});
    }
    input.erase(0, fed);
    if (tap) {
      std::vector<std::vector<uint8_t>> frames;
      (void)tap->read_frames(frames);
      rx_queue.add(frames);
      fed += rx_queue.deliver(machine, [&](std::vector<uint8_t>&& f) {
        if (recorder) (void)recorder->net_frame(machine.instret(), f);
      });
    }

    if (r.status == vm::RunStatus::kIdle && fed == 0) {
      const std::optional<uint64_t> wake = machine.next_wakeup();
      if (!wake && !input_open && !tap) {
        fmt::print(stderr, "\nftvm: the guest is waiting for an interrupt that can never come "
                           "(no timer armed, no input); stopping\n");
        exit_code = kExitMachineError;
        break;
      }
      // Keep guest time from running ahead of the wall clock while idle.
      const auto target =
          wake ? pacer.wall_time_of(*wake)
               : Clock::time_point::max();
      const auto now = Clock::now();
      if (now < target) {
        const auto wait = target - now;
        if (input_open || tap) {
          std::vector<int> fds;
          if (input_open) fds.push_back(STDIN_FILENO);
          if (tap) fds.push_back(tap->fd());
          if (hostio::wait_any_readable(fds, wait)) continue;
          if (Clock::now() < target) continue;
        } else {
          struct timespec ts;
          const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
          ts.tv_sec = ns / 1'000'000'000;
          ts.tv_nsec = ns % 1'000'000'000;
          nanosleep(&ts, nullptr);
        }
      }
      if (wake) {
        if (recorder) (void)recorder->time_skip(machine.instret(), *wake);
        machine.skip_time_to(*wake);
      }
    }
  }
  raw.reset();
  if (o.snapshot_at && !snapshot_taken) {
    fmt::print(stderr, "ftvm: the run ended at instret {}, before --snapshot-at {}: no snapshot\n",
               machine.instret(), *o.snapshot_at);
  }
  if (recorder) {
    if (Status s = recorder->finish(machine, exit_code); !s) {
      fmt::print(stderr, "ftvm: recording {} failed: {}\n", o.record, s.error());
      if (exit_code == 0) exit_code = kExitMachineError;
    } else {
      fmt::print(stderr, "ftvm: recorded {} bytes of event log to {}\n", recorder->bytes_written(),
                 o.record);
    }
  }
  if (rx_queue.dropped() > 0) {
    fmt::print(stderr,
               "ftvm: {} received frames were dropped: more than {} waited for the guest's "
               "receive buffers\n",
               rx_queue.dropped(), ft::RxQueue::kCapacity);
  }
  if (disk_faults.failures() > 0) {
    fmt::print(stderr,
               "ftvm: the disk failed on this host {} time(s) and the guest saw I/O errors{}; the "
               "last: {}\n",
               disk_faults.failures(), recorder ? " (logged, so a replay sees them too)" : "",
               disk_faults.last_failure());
  }
  if (o.state_hash) fmt::print(stderr, "ftvm: state_hash={}\n", machine.state_hash());
  if (o.stats) {
    const double host_s = std::chrono::duration<double>(Clock::now() - start).count();
    fmt::print(stderr, "ftvm: instret={} guest_seconds={:.6f} host_seconds={:.3f} mips={:.1f}\n",
               machine.instret(), machine.guest_seconds(), host_s,
               host_s > 0 ? machine.instret() / host_s / 1e6 : 0.0);
    const vm::JitStats j = machine.hart().jit_stats();
    fmt::print(stderr,
               "ftvm: engine={} jit_blocks={} jit_block_instructions={} jit_code_bytes={} "
               "jit_code_capacity={} jit_flushes={} jit_interpreted={}\n",
               vm::engine_name(o.engine), j.blocks_compiled, j.instructions, j.code_bytes,
               j.code_capacity, j.flushes, j.interpreted);
  }
  return exit_code;
}

}  // namespace ftvm::cli
