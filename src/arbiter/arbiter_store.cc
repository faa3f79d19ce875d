// The grant file: replay on open, append + fdatasync per grant.
#include "arbiter/arbiter_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return make_error(
        fmt::format("cannot create arbiter data directory '{}': {}", dir, errno_text()));
  }
  const std::string path = dir + "/grants.log";
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(fmt::format("cannot open grant file '{}': {}", path, errno_text()));
  std::unique_ptr<ArbiterStore> store(new ArbiterStore(fd, path));
  if (!existed) {
    // Make the new file's directory entry durable before any grant in it.
    if (::fsync(fd) != 0)
      return make_error(fmt::format("cannot sync '{}': {}", path, errno_text()));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || ::fsync(dfd) != 0) {
      if (dfd >= 0) ::close(dfd);
      return make_error(fmt::format("cannot sync directory '{}': {}", dir, errno_text()));
    }
    ::close(dfd);
  }
  if (Status s = store->replay(); !s) return make_error(s.error());
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
    if (it != latest_.end() && it->second >= epoch)
      return corrupt("epoch not above the vm's last grant");
    latest_[vm] = epoch;
    grants_[{vm, epoch}] = std::move(claimant);
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
  if (auto it = grants_.find({vm_id, epoch}); it != grants_.end()) {
    g.holder = it->second;
    g.won = it->second == claimant;
    return g;
  }
  if (auto it = latest_.find(vm_id); it != latest_.end() && it->second >= epoch) {
    g.held_epoch = it->second;
    g.holder = grants_.at({vm_id, it->second});
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
  latest_[vm_id] = epoch;
  grants_[{vm_id, epoch}] = claimant;
  g.holder = claimant;
  g.won = true;
  return g;
}

}  // namespace ftvm::arbiter
