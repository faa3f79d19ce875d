// Saving and loading snapshot files with POSIX calls.
#include "hostio/snapshot_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ftvm::hostio {

namespace {

// An upper bound on any valid snapshot's size: the largest description, the
// state, and every chunk of the largest RAM stored raw in the smallest chunks.
constexpr uint64_t kMaxSnapshotFileSize =
    vm::kSnapshotPrefixSize + 3 * vm::kSectionOverhead + (8 + 20 + (uint64_t{1} << 20)) +
    vm::kStateSectionSize + 16 +
    (vm::kMaxSnapshotRamSize / vm::kMinChunkSize) * (vm::kSectionOverhead + 12) +
    vm::kMaxSnapshotRamSize;

std::string system_error(const std::string& what, const std::string& path) {
  return fmt::format("cannot {} '{}': {}", what, path, std::strerror(errno));
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status write_all(int fd, std::span<const uint8_t> bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(system_error("write", path));
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Status save_snapshot(const std::string& path, const vm::SnapshotInfo& info,
                     const vm::MachineState& state, std::span<const uint8_t> ram,
                     const vm::SnapshotOptions& options) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return make_error(system_error("create a temporary file for", path));
  auto abandon = [&](std::string message) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return make_error(std::move(message));
  };
  // One write(2) per piece: a piece is a section, mostly one chunk.
  Status s = vm::encode_snapshot_to(
      info, state, ram, options, [&](std::span<const uint8_t> b) { return write_all(fd, b, tmp); });
  if (!s) return abandon(s.error());
  if (::fsync(fd) != 0) return abandon(system_error("sync", tmp));
  if (::close(fd) != 0) {
    const std::string message = system_error("close", tmp);
    ::unlink(tmp.c_str());
    return make_error(message);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string message = system_error("rename the snapshot to", path);
    ::unlink(tmp.c_str());
    return make_error(message);
  }
  const std::string dir = directory_of(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return make_error(system_error("open the directory", dir));
  const bool synced = ::fsync(dfd) == 0;
  const std::string message = synced ? "" : system_error("sync the directory", dir);
  ::close(dfd);
  if (!synced) return make_error(message);
  return {};
}

Result<std::vector<uint8_t>> read_snapshot_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(system_error("open the snapshot", path));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const std::string message = system_error("stat", path);
    ::close(fd);
    return make_error(message);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(fmt::format("snapshot '{}' is not a regular file", path));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > kMaxSnapshotFileSize) {
    ::close(fd);
    return make_error(fmt::format("'{}' is {} bytes, larger than any snapshot can be ({})", path,
                                  size, kMaxSnapshotFileSize));
  }
  std::vector<uint8_t> bytes(size);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string message =
          n < 0 ? system_error("read", path)
                : fmt::format("'{}' shrank while being read (at {} of {} bytes)", path, done, size);
      ::close(fd);
      return make_error(message);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return bytes;
}

Result<vm::DecodedSnapshot> load_snapshot(const std::string& path) {
  Result<std::vector<uint8_t>> bytes = read_snapshot_file(path);
  if (!bytes) return make_error(bytes.error());
  return vm::decode_snapshot(*bytes, path);
}

Result<vm::SnapshotInfo> load_snapshot_into(const std::string& path, vm::Machine& machine) {
  Result<std::vector<uint8_t>> bytes = read_snapshot_file(path);
  if (!bytes) return make_error(bytes.error());
  Result<vm::SnapshotContents> c =
      vm::decode_snapshot_into(*bytes, {machine.bus().ram(), machine.bus().ram_size()}, path);
  if (!c) return make_error(c.error());
  machine.restore(c->state);
  return std::move(c->info);
}

}  // namespace ftvm::hostio
