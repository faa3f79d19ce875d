// Record-by-record replay (see replayer.h).
#include "ft/replayer.h"

#include <fmt/format.h>

#include <algorithm>
#include <variant>

namespace ftvm::ft {

void ReplayEntropy::fill(std::span<uint8_t> out) {
  std::fill(out.begin(), out.end(), 0);
  if (staged_.empty() && fallback_ != nullptr) {
    fallback_->fill(out);
    return;
  }
  if (!divergence_.empty()) return;
  if (staged_.empty()) {
    divergence_ = fmt::format("the guest asked for {} entropy bytes at instret {} that the "
                              "recording never gave",
                              out.size(), machine_.instret());
    return;
  }
  const auto& [instret, bytes] = staged_.front();
  if (instret != machine_.instret() || bytes.size() != out.size()) {
    divergence_ = fmt::format("entropy asked for at instret {} ({} bytes), recorded at instret "
                              "{} ({} bytes)",
                              machine_.instret(), out.size(), instret, bytes.size());
    return;
  }
  std::copy(bytes.begin(), bytes.end(), out.begin());
  staged_.pop_front();
}

Status Replayer::run_to(uint64_t instret, const log::Record& record) {
  while (machine_.instret() < instret) {
    if (last_ == vm::RunStatus::kPowerOff || last_ == vm::RunStatus::kReset ||
        last_ == vm::RunStatus::kError) {
      return make_error(fmt::format("the machine stopped at instret {} but the log goes on to {}",
                                    machine_.instret(), log::to_string(record)));
    }
    const vm::RunResult res = machine_.run(instret - machine_.instret());
    last_ = res.status;
    if (entropy_ && !entropy_->divergence().empty()) return make_error(entropy_->divergence());
    if (disk_faults_) {
      disk_faults_->check_passed(machine_.instret());
      if (!disk_faults_->host_failure().empty()) return make_error(disk_faults_->host_failure());
      if (!disk_faults_->divergence().empty()) return make_error(disk_faults_->divergence());
    }
    if (res.status == vm::RunStatus::kError) {
      return make_error("the machine stopped: " + machine_.error());
    }
    if (res.status == vm::RunStatus::kIdle && machine_.instret() < instret) {
      return make_error(fmt::format("the guest idles at instret {} but the log's next event is {}",
                                    machine_.instret(), log::to_string(record)));
    }
  }
  if (machine_.instret() != instret) {
    return make_error(fmt::format("at instret {}: expected to stop at {}", machine_.instret(),
                                  log::to_string(record)));
  }
  return {};
}

Status Replayer::apply(const log::Record& r) {
  if (ended_) return make_error(fmt::format("{} follows the End record", log::to_string(r)));
  if (r.instret < machine_.instret()) {
    return make_error(fmt::format("{} is behind the machine (instret {})", log::to_string(r),
                                  machine_.instret()));
  }
  if (Status s = run_to(r.instret, r); !s) return s;
  ++records_;
  const log::Payload& p = r.payload;
  if (const auto* in = std::get_if<log::ConsoleInput>(&p)) {
    for (uint8_t b : in->bytes) {
      if (!machine_.push_console_input(b)) {
        return make_error(fmt::format("at instret {}: the UART has no room for {}", r.instret,
                                      log::to_string(r)));
      }
    }
  } else if (const auto* skip = std::get_if<log::TimeSkip>(&p)) {
    machine_.skip_time_to(skip->target_mtime);
  } else if (const auto* e = std::get_if<log::Entropy>(&p)) {
    if (!entropy_) return make_error("the log has entropy but the machine has no entropy device");
    entropy_->stage(r.instret, e->bytes);
  } else if (const auto* de = std::get_if<log::DiskError>(&p)) {
    if (!disk_faults_) return make_error("the log has a disk error but the machine has no disk");
    disk_faults_->stage(r.instret, *de);
  } else if (const auto* sh = std::get_if<log::StateHash>(&p)) {
    const auto mine = machine_.state_digest();
    if (mine != sh->hash) {
      return make_error(fmt::format("state hash differs at instret {}: replay {} recording {}",
                                    r.instret, log::to_hex(mine), log::to_hex(sh->hash)));
    }
    ++checkpoints_;
    ++state_hashes_;
    last_hash_instret_ = r.instret;
  } else if (const auto* od = std::get_if<log::OutputDigest>(&p)) {
    if (check_outputs_) {
      const log::OutputDigest mine = outputs_.digest();
      if (!(mine == *od)) {
        return make_error(fmt::format(
            "outputs differ by instret {}: replay produced {} console bytes and {} frames "
            "(digest {}), the recording {} and {} ({})",
            r.instret, mine.console_bytes, mine.frames, log::to_hex(mine.sha256), od->console_bytes,
            od->frames, log::to_hex(od->sha256)));
      }
      ++checkpoints_;
    }
  } else if (const auto* end = std::get_if<log::End>(&p)) {
    if (entropy_ && !entropy_->idle()) {
      return make_error("the recording gave entropy that the replay never asked for");
    }
    if (disk_faults_ && !disk_faults_->idle()) {
      return make_error("the recording has a disk failure that the replay never met");
    }
    const bool off = last_ == vm::RunStatus::kPowerOff;
    const int status = off ? static_cast<int>(machine_.exit_status()) : 0;
    if (off && status != end->exit_status) {
      return make_error(fmt::format("the guest exited with status {}, the recording with {}", status,
                                    end->exit_status));
    }
    ended_ = true;
    exit_status_ = end->exit_status;
  } else if (const auto* frame = std::get_if<log::NetFrame>(&p)) {
    if (!machine_.has_net()) return make_error("the log has a network frame but the machine has no NIC");
    if (!machine_.deliver_frame(frame->frame)) {
      return make_error(fmt::format("at instret {}: the guest has no receive buffer for {}",
                                    r.instret, log::to_string(r)));
    }
  }
  // log::Progress: running to its instret was all it asked.
  return {};
}

}  // namespace ftvm::ft
