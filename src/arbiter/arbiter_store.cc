// The grant file: replay on open, append + fdatasync per grant.
#include "arbiter/arbiter_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "log/coding.h"

namespace ftvm::arbiter {

namespace {

using log::internal::as_bytes;
using log::internal::crc32_of;
using log::internal::get_u32;
using log::internal::get_u64;
using log::internal::put_u32;
using log::internal::put_u64;

constexpr size_t kHeaderSize = 8;  // crc32, payload length
constexpr uint32_t kMaxPayload = 8 + 4 + kMaxNameLength + 4 + kMaxNameLength;

std::string encode_record(const std::string& vm, uint64_t epoch, const std::string& claimant) {
  std::string payload;
  put_u64(payload, epoch);
  put_u32(payload, static_cast<uint32_t>(vm.size()));
  payload += vm;
  put_u32(payload, static_cast<uint32_t>(claimant.size()));
  payload += claimant;
  std::string len;
  put_u32(len, static_cast<uint32_t>(payload.size()));
  std::string record;
  put_u32(record, crc32_of(as_bytes(len + payload)));
  record += len;
  record += payload;
  return record;
}

std::string errno_text() { return std::strerror(errno); }

Status write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errno_text());
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

Result<std::unique_ptr<ArbiterStore>> ArbiterStore::open(const std::string& dir) {
  const std::string path = dir + "/grants.log";
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    return make_error(fmt::format(
        "no arbiter store in '{}' (no grant file {}): make a new one with `ftvm arbiter --init` "
        "only if no arbiter ever granted epochs from this directory; if one did, restore "
        "grants.log from a backup instead (an empty store would grant old epochs again)",
        dir, path));
  }
  if (fd < 0) return make_error(fmt::format("cannot open grant file '{}': {}", path, errno_text()));
  std::unique_ptr<ArbiterStore> store(new ArbiterStore(fd, path));
  if (Status s = store->replay(); !s) return make_error(s.error());
  return store;
}

Result<std::unique_ptr<ArbiterStore>> ArbiterStore::create(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return make_error(
        fmt::format("cannot create arbiter data directory '{}': {}", dir, ec.message()));
  }
  const std::string path = dir + "/grants.log";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    return make_error(fmt::format(
        "an arbiter store already exists in '{}' ({}): --init makes only a new one; start "
        "the arbiter without --init to use it",
        dir, path));
  }
  if (fd < 0) return make_error(fmt::format("cannot create grant file '{}': {}", path, errno_text()));
  std::unique_ptr<ArbiterStore> store(new ArbiterStore(fd, path));
  // Make the new file's directory entry durable before any grant in it.
  if (::fsync(fd) != 0) return make_error(fmt::format("cannot sync '{}': {}", path, errno_text()));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    if (dfd >= 0) ::close(dfd);
    return make_error(fmt::format("cannot sync directory '{}': {}", dir, errno_text()));
  }
  ::close(dfd);
  return store;
}

ArbiterStore::~ArbiterStore() { ::close(fd_); }

Status ArbiterStore::replay() {
  std::string data;
  char buf[65536];
  if (::lseek(fd_, 0, SEEK_SET) < 0)
    return make_error(fmt::format("cannot read '{}': {}", path_, errno_text()));
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(fmt::format("cannot read '{}': {}", path_, errno_text()));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t off = 0;
  while (off < data.size()) {
    const size_t left = data.size() - off;
    auto corrupt = [&](const char* what) {
      return make_error(fmt::format(
          "grant file '{}' is corrupt at offset {}: {}; refusing to start (restore the file "
          "from a backup -- never delete it, or epochs could be granted twice)",
          path_, off, what));
    };
    bool torn = false;
    uint32_t len = 0;
    if (left < kHeaderSize) {
      torn = true;
    } else {
      len = get_u32(p + off + 4);
      if (len > kMaxPayload) return corrupt("record length out of range");
      if (left < kHeaderSize + len) torn = true;
    }
    if (!torn) {
      const uint32_t want = get_u32(p + off);
      const uint32_t got = crc32_of({p + off + 4, 4 + size_t{len}});
      if (want != got) {
        // A bad checksum on the very last record is a write cut short.
        if (left == kHeaderSize + len) {
          torn = true;
        } else {
          return corrupt("checksum mismatch");
        }
      }
    }
    if (torn) {
      std::fprintf(stderr,
                   "ftvm arbiter: warning: ignoring a torn last record at offset %zu of '%s' "
                   "(%zu bytes; an interrupted write)\n",
                   off, path_.c_str(), left);
      if (::ftruncate(fd_, static_cast<off_t>(off)) != 0 || ::fdatasync(fd_) != 0) {
        return make_error(
            fmt::format("cannot truncate the torn tail of '{}': {}", path_, errno_text()));
      }
      break;
    }
    const uint8_t* q = p + off + kHeaderSize;
    const uint8_t* end = q + len;
    if (len < 12) return corrupt("record too short");
    const uint64_t epoch = get_u64(q);
    const uint32_t vm_len = get_u32(q + 8);
    if (vm_len > static_cast<size_t>(end - q) - 12) return corrupt("vm id overruns the record");
    std::string vm(reinterpret_cast<const char*>(q + 12), vm_len);
    const uint8_t* r = q + 12 + vm_len;
    if (end - r < 4) return corrupt("record too short");
    const uint32_t c_len = get_u32(r);
    if (c_len != static_cast<size_t>(end - r) - 4) return corrupt("claimant length mismatch");
    std::string claimant(reinterpret_cast<const char*>(r + 4), c_len);
    if (!valid_name(vm) || !valid_name(claimant)) return corrupt("invalid name");
    auto it = latest_.find(vm);
    if (it != latest_.end() && it->second.epoch >= epoch)
      return corrupt("epoch not above the vm's last grant");
    latest_[vm] = LatestGrant{vm, epoch, std::move(claimant)};
    ++grant_count_;
    off += kHeaderSize + len;
  }
  if (::lseek(fd_, 0, SEEK_END) < 0)
    return make_error(fmt::format("cannot seek '{}': {}", path_, errno_text()));
  return {};
}

Result<Grant> ArbiterStore::claim(const std::string& vm_id, uint64_t epoch,
                                  const std::string& claimant) {
  if (!valid_name(vm_id)) return make_error("bad vm id (1-255 printable characters, no spaces)");
  if (!valid_name(claimant))
    return make_error("bad claimant (1-255 printable characters, no spaces)");
  Grant g{vm_id, epoch, "", epoch, false};
  if (auto it = latest_.find(vm_id); it != latest_.end() && it->second.epoch >= epoch) {
    g.held_epoch = it->second.epoch;
    g.holder = it->second.holder;
    g.won = g.held_epoch == epoch && g.holder == claimant;
    return g;
  }
  if (failed_)
    return make_error(fmt::format("grant file '{}' failed earlier; restart the arbiter", path_));
  const std::string record = encode_record(vm_id, epoch, claimant);
  Status w = write_all(fd_, record);
  if (w && ::fdatasync(fd_) != 0) w = make_error(errno_text());
  if (!w) {
    failed_ = true;
    return make_error(fmt::format("cannot make the grant durable in '{}': {}", path_, w.error()));
  }
  latest_[vm_id] = LatestGrant{vm_id, epoch, claimant};
  ++grant_count_;
  g.holder = claimant;
  g.won = true;
  return g;
}

LatestGrant ArbiterStore::latest(const std::string& vm_id) const {
  auto it = latest_.find(vm_id);
  return it != latest_.end() ? it->second : LatestGrant{vm_id, 0, ""};
}

}  // namespace ftvm::arbiter
