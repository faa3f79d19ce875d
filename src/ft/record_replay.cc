// Record and replay (see record_replay.h).
#include "ft/record_replay.h"

#include "ft/replayer.h"

#include <fmt/format.h>

#include <deque>
#include <variant>

#include "hostio/block_file.h"
#include "vm/block_overlay.h"
#include "hostio/snapshot_file.h"
#include "log/log_reader.h"
#include "util/file.h"

namespace ftvm::ft {
namespace {

constexpr const char* kKernelPathKey = "kernel.path";
constexpr const char* kInitrdPathKey = "initrd.path";
constexpr const char* kDiskPathKey = "disk.path";
constexpr const char* kDiskModeKey = "disk.mode";  // "writable"; absent: read-only
constexpr const char* kEntropyKey = "entropy";
constexpr const char* kNetMacKey = "net.mac";
constexpr const char* kRngSeedKey = "rng-seed";
constexpr const char* kEntropyDevice = "virtio-rng";

std::string meta(const log::Header& h, const char* key) {
  auto it = h.metadata.find(key);
  return it == h.metadata.end() ? std::string() : it->second;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

Result<std::vector<uint8_t>> from_hex(std::string_view hex, const char* what) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0 || hex.size() / 2 > kMaxRngSeedBytes) {
    return make_error(fmt::format("the header's {} is {} hex digits: expected an even number, at "
                                  "most {}",
                                  what, hex.size(), 2 * kMaxRngSeedBytes));
  }
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return make_error(fmt::format("the header's {} is not lower-case hex (at digit {})", what,
                                    2 * i + (hi < 0 ? 0 : 1)));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace

Result<log::Header> make_header(const MachineSpec& spec) {
  log::Header h;
  h.ram_size = spec.ram_size;
  h.cmdline = spec.cmdline;
  Result<log::ImageDigest> kernel = log::digest_file(spec.kernel_path);
  if (!kernel) return make_error(kernel.error());
  h.kernel = *kernel;
  h.metadata[kKernelPathKey] = spec.kernel_path;
  if (!spec.initrd_path.empty()) {
    Result<log::ImageDigest> initrd = log::digest_file(spec.initrd_path);
    if (!initrd) return make_error(initrd.error());
    h.initrd = *initrd;
    h.metadata[kInitrdPathKey] = spec.initrd_path;
  }
  if (!spec.disk_path.empty()) {
    Result<log::ImageDigest> disk = log::digest_file(spec.disk_path);
    if (!disk) return make_error(disk.error());
    h.disk = *disk;
    h.metadata[kDiskPathKey] = spec.disk_path;
    if (spec.disk_writable) h.metadata[kDiskModeKey] = "writable";
  }
  h.metadata[kEntropyKey] = spec.entropy ? kEntropyDevice : "none";
  if (!spec.net_mac.empty()) h.metadata[kNetMacKey] = spec.net_mac;
  if (!spec.rng_seed.empty()) h.metadata[kRngSeedKey] = to_hex(spec.rng_seed);
  h.metadata["ftvm.log.writer"] = "ftvm run --record";
  return h;
}

void set_live_entropy(MachineSpec& spec, const hostio::EntropyChoice& choice) {
  spec.entropy = choice.mode != hostio::EntropyMode::kNone;
  spec.rng_seed = hostio::rng_seed_for(choice);
}

Result<MachineSpec> spec_from_header(const log::Header& h, MachineSpec local) {
  MachineSpec spec = std::move(local);
  spec.ram_size = h.ram_size;
  spec.cmdline = h.cmdline;
  spec.entropy = meta(h, kEntropyKey) == kEntropyDevice;
  spec.net_mac = meta(h, kNetMacKey);
  const std::string disk_mode = meta(h, kDiskModeKey);
  if (!disk_mode.empty() && disk_mode != "writable") {
    return make_error(fmt::format("the header's {} is '{}': this ftvm knows only 'writable'",
                                  kDiskModeKey, disk_mode));
  }
  spec.disk_writable = h.disk.has_value() && disk_mode == "writable";
  Result<std::vector<uint8_t>> seed = from_hex(meta(h, kRngSeedKey), kRngSeedKey);
  if (!seed) return make_error(seed.error());
  spec.rng_seed = std::move(*seed);
  if (spec.kernel_path.empty()) return make_error("no path for the kernel; pass --kernel");
  if (h.initrd && spec.initrd_path.empty()) {
    return make_error("the machine has an initrd but no path for it was given; pass --initrd");
  }
  if (h.disk && spec.disk_path.empty()) {
    return make_error("the machine has a disk but no path for it was given; pass --disk");
  }
  if (!h.initrd) spec.initrd_path.clear();
  if (!h.disk) spec.disk_path.clear();
  return spec;
}

Result<LoadedImages> load_images(const MachineSpec& spec, bool disk_in_place) {
  LoadedImages images;
  Result<std::vector<uint8_t>> kernel = read_file(spec.kernel_path, "kernel");
  if (!kernel) return make_error(kernel.error());
  images.kernel = std::move(*kernel);
  if (!spec.initrd_path.empty()) {
    Result<std::vector<uint8_t>> r = read_file(spec.initrd_path, "initrd");
    if (!r) return make_error(r.error());
    images.initrd = std::move(*r);
  }
  images.config.ram_size = spec.ram_size;
  images.config.rng_seed = spec.rng_seed;
  if (!spec.disk_path.empty()) {
    Result<std::unique_ptr<hostio::FileBlockBackend>> d =
        hostio::FileBlockBackend::open(spec.disk_path,
                                       /*read_only=*/!(spec.disk_writable && disk_in_place));
    if (!d) return make_error(d.error());
    images.disk_file = std::move(*d);
    images.config.disk = images.disk_file.get();
    if (spec.disk_writable && !disk_in_place) {
      images.disk_overlay = std::make_unique<vm::OverlayBlockBackend>(images.disk_file.get());
      images.config.disk = images.disk_overlay.get();
    }
  }
  if (!spec.net_mac.empty()) {
    images.config.net_mac = vm::parse_mac(spec.net_mac);
    if (!images.config.net_mac) {
      return make_error(fmt::format("'{}' is not a MAC address", spec.net_mac));
    }
  }
  return images;
}

// ---- recording ----

Result<std::unique_ptr<Recorder>> Recorder::create(const std::string& path,
                                                   const log::Header& header,
                                                   uint64_t hash_interval) {
  Result<log::LogWriter> w = log::LogWriter::create(path, header);
  if (!w) return make_error(w.error());
  return std::unique_ptr<Recorder>(new Recorder(std::move(*w), hash_interval));
}

Status Recorder::append(log::Record record) {
  if (!status_) return status_;
  status_ = writer_.append(record);
  if (status_) ++records_;
  return status_;
}

Status Recorder::console_input(uint64_t instret, std::span<const uint8_t> bytes) {
  if (bytes.empty()) return status_;
  return append({instret, log::ConsoleInput{log::Bytes(bytes.begin(), bytes.end())}});
}

Status Recorder::time_skip(uint64_t instret, uint64_t target_mtime) {
  return append({instret, log::TimeSkip{target_mtime}});
}

Status Recorder::net_frame(uint64_t instret, std::span<const uint8_t> frame) {
  return append({instret, log::NetFrame{log::Bytes(frame.begin(), frame.end())}});
}

Status Recorder::disk_error(uint64_t instret, log::DiskError error) {
  return append({instret, std::move(error)});
}

Status Recorder::entropy(uint64_t instret, std::span<const uint8_t> bytes) {
  if (bytes.empty()) return status_;
  return append({instret, log::Entropy{log::Bytes(bytes.begin(), bytes.end())}});
}

Status Recorder::checkpoint(const vm::Machine& machine) {
  last_checkpoint_ = machine.instret();
  if (Status s = append({machine.instret(), log::StateHash{machine.state_digest()}}); !s) return s;
  return append({machine.instret(), outputs_.digest()});
}

Status Recorder::maybe_checkpoint(const vm::Machine& machine) {
  if (hash_interval_ == 0 || machine.instret() - last_checkpoint_ < hash_interval_) return status_;
  return checkpoint(machine);
}

Status Recorder::finish(const vm::Machine& machine, int exit_status) {
  if (Status s = checkpoint(machine); !s) return s;
  if (Status s = append({machine.instret(), log::End{exit_status}}); !s) return s;
  status_ = writer_.flush();
  if (status_) status_ = writer_.sync();
  return status_;
}

void RecordingEntropy::fill(std::span<uint8_t> out) {
  inner_.fill(out);
  (void)recorder_.entropy(machine_.instret(), out);
}

// ---- replay ----

Result<ReplayReport> replay(const std::string& path, const ReplayOptions& options) {
  Result<log::LogReader> opened = log::LogReader::open(path);
  if (!opened) return make_error(opened.error());
  log::LogReader& reader = *opened;
  Result<log::Header> header = reader.header();
  if (!header) return make_error(header.error());
  const log::Header& h = *header;

  MachineSpec local;
  local.kernel_path = options.kernel_path.empty() ? meta(h, kKernelPathKey) : options.kernel_path;
  local.initrd_path = options.initrd_path.empty() ? meta(h, kInitrdPathKey) : options.initrd_path;
  local.disk_path = options.disk_path.empty() ? meta(h, kDiskPathKey) : options.disk_path;
  Result<MachineSpec> built = spec_from_header(h, std::move(local));
  if (!built) return make_error(fmt::format("{}: {}", path, built.error()));
  const MachineSpec& spec = *built;
  Result<log::Header> current = make_header(spec);
  if (!current) return make_error(current.error());
  if (Status s = log::check_same_machine(h, *current); !s) {
    return make_error(fmt::format("{}: {}", path, s.error()));
  }

  Result<LoadedImages> images = load_images(spec);
  if (!images) return make_error(images.error());
  vm::MachineConfig& config = images->config;
  config.engine = options.engine;
  // The machine must exist before the entropy source that reads its instret.
  std::unique_ptr<ReplayEntropy> entropy;
  vm::EntropySource* entropy_ptr = nullptr;
  struct Forward final : vm::EntropySource {
    vm::EntropySource** target;
    explicit Forward(vm::EntropySource** t) : target(t) {}
    void fill(std::span<uint8_t> out) override { (*target)->fill(out); }
  } forward(&entropy_ptr);
  if (spec.entropy) config.entropy = &forward;
  vm::Machine machine(config);
  if (spec.entropy) {
    entropy = std::make_unique<ReplayEntropy>(machine);
    entropy_ptr = entropy.get();
  }
  uint64_t skip_records = 0;
  if (!options.from_snapshot.empty() && spec.disk_writable) {
    return make_error(fmt::format(
        "{}: the recorded guest wrote to its disk, and a snapshot does not hold the disk's "
        "contents at the instret it was taken; replay the whole log instead (without --from)",
        path));
  }
  if (options.from_snapshot.empty()) {
    if (Status s = machine.load_linux(images->kernel, images->initrd, spec.cmdline); !s) {
      return make_error(s.error());
    }
  } else {
    Result<vm::SnapshotInfo> info = hostio::load_snapshot_into(options.from_snapshot, machine);
    if (!info) return make_error(info.error());
    if (Status s = log::check_same_machine(h, info->machine); !s) {
      return make_error(fmt::format("{} was not taken on the machine {} recorded: {}",
                                    options.from_snapshot, path, s.error()));
    }
    const std::string n = meta(info->machine, kSnapshotLogRecordsKey);
    if (n.empty()) {
      return make_error(fmt::format("{} was not taken during a recording (no {} in its header)",
                                    options.from_snapshot, kSnapshotLogRecordsKey));
    }
    skip_records = std::stoull(n);
  }
  Replayer replayer(machine, entropy.get(), options.from_snapshot.empty());
  ReplayDiskFaults disk_faults(machine);
  if (machine.has_disk()) {
    machine.set_disk_faults(&disk_faults);
    replayer.set_disk_faults(&disk_faults);
  }
  log::OutputDigester& outputs = replayer.outputs();
  machine.set_console_sink([&outputs](uint8_t b) { outputs.add_console({&b, 1}); });
  machine.set_frame_sink([&outputs](std::span<const uint8_t> f) { outputs.add_frame(f); });

  ReplayReport report;
  for (;;) {
    Result<std::optional<log::Record>> next = reader.next();
    if (!next) return make_error(next.error());
    if (!next->has_value()) {
      report.ok = false;
      report.instret = machine.instret();
      report.divergence = fmt::format("the log ends at offset {} without an End record (the "
                                      "recording was cut short)",
                                      reader.offset());
      return report;
    }
    const log::Record& r = **next;
    if (skip_records > 0) {
      // Already part of the snapshot's state.
      --skip_records;
      if (std::get_if<log::End>(&r.payload)) {
        return make_error("the snapshot was taken after the recording ended");
      }
      continue;
    }
    const Status applied = replayer.apply(r);
    report.records = replayer.records();
    report.checkpoints = replayer.checkpoints();
    report.instret = machine.instret();
    if (!applied) {
      report.ok = false;
      report.divergence = applied.error();
      return report;
    }
    if (replayer.ended()) {
      report.ok = true;
      report.exit_status = replayer.exit_status();
      return report;
    }
  }
}

}  // namespace ftvm::ft
