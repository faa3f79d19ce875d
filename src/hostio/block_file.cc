// Raw image files behind vm::BlockBackend; see block_file.h.
#include "hostio/block_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ftvm::hostio {

Result<std::unique_ptr<FileBlockBackend>> FileBlockBackend::open(const std::string& path,
                                                                 bool read_only) {
  const int fd = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string hint;
    if (err == EACCES || err == EROFS) {
      hint = read_only ? "" : "; open it read-only or fix its permissions";
    } else if (err == ENOENT) {
      hint = "; check the path";
    }
    return make_error(fmt::format("cannot open disk image {}: {}{}", path, std::strerror(err),
                                  hint));
  }
  struct stat st{};
  if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
    ::close(fd);
    return make_error(fmt::format("disk image {} is neither a regular file nor a block device",
                                  path));
  }
  if (!read_only && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return make_error(fmt::format(
          "disk image {} is in use by another process that writes it (another ftvm node on this "
          "host's copy? see `ftvm status`): stop that one first, or use another copy",
          path));
    }
    return make_error(fmt::format("cannot lock disk image {}: {}", path, std::strerror(err)));
  }
  // lseek gives the size of block devices too, where st_size is 0.
  const off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) {
    const int err = errno;
    ::close(fd);
    return make_error(fmt::format("cannot find the size of disk image {}: {}", path,
                                  std::strerror(err)));
  }
  return std::unique_ptr<FileBlockBackend>(
      new FileBlockBackend(fd, path, static_cast<uint64_t>(end), read_only));
}

FileBlockBackend::~FileBlockBackend() {
  (void)join_background();
  ::close(fd_);
}

void FileBlockBackend::set_lazy_flush(std::optional<std::chrono::milliseconds> interval) {
  lazy_ = interval;
}

Status FileBlockBackend::join_background() {
  if (background_.joinable()) background_.join();
  std::lock_guard<std::mutex> lock(background_mu_);
  if (background_error_) {
    std::string e = std::move(*background_error_);
    background_error_.reset();
    return make_error(std::move(e));
  }
  return {};
}

Status FileBlockBackend::read(uint64_t offset, std::span<uint8_t> out) {
  FTVM_CHECK(offset <= size_ && out.size() <= size_ - offset);
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return make_error(fmt::format("reading {} at byte {}: {}", path_, offset + done,
                                    std::strerror(errno)));
    }
    if (n == 0) {
      return make_error(fmt::format("reading {} at byte {}: the image is shorter than the {} "
                                    "bytes it had when opened",
                                    path_, offset + done, size_));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Status FileBlockBackend::write(uint64_t offset, std::span<const uint8_t> data) {
  if (read_only_) return make_error(fmt::format("{} is open read-only", path_));
  FTVM_CHECK(offset <= size_ && data.size() <= size_ - offset);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return make_error(fmt::format("writing {} at byte {}: {}", path_, offset + done,
                                    n < 0 ? std::strerror(errno) : "no progress"));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Status FileBlockBackend::flush() {
  if (!lazy_) return sync_now();
  // A failed background sync is this flush's failure.
  if (background_.joinable() && background_done_) {
    if (Status s = join_background(); !s) return s;
  }
  if (std::chrono::steady_clock::now() - last_sync_ < *lazy_ || background_.joinable()) return {};
  last_sync_ = std::chrono::steady_clock::now();
  ++syncs_;
  background_done_ = false;
  background_ = std::thread([this] {
    while (::fdatasync(fd_) != 0) {
      if (errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(background_mu_);
      background_error_ = fmt::format("flushing {}: {}", path_, std::strerror(errno));
      break;
    }
    background_done_ = true;
  });
  return {};
}

Status FileBlockBackend::sync_now() {
  if (Status s = join_background(); !s) return s;
  last_sync_ = std::chrono::steady_clock::now();
  ++syncs_;
  while (::fdatasync(fd_) != 0) {
    if (errno == EINTR) continue;
    return make_error(fmt::format("flushing {}: {}", path_, std::strerror(errno)));
  }
  return {};
}

}  // namespace ftvm::hostio
