// Copies of disk images for recordings (see disk_copy.h).
#include "hostio/disk_copy.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ftvm::hostio {
namespace {

// Closes a descriptor at the end of its scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string err(const std::string& what) { return fmt::format("{}: {}", what, std::strerror(errno)); }

// Copies bytes [from, to) of `in` to the same offsets of `out`.
Status copy_range(int in, int out, uint64_t from, uint64_t to, const std::string& src) {
  std::vector<uint8_t> buf(1 << 20);
  uint64_t at = from;
  while (at < to) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), to - at));
    const ssize_t n = ::pread(in, buf.data(), want, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(err(fmt::format("reading {} at byte {}", src, at)));
    if (n == 0) return make_error(fmt::format("{} ended at byte {} while being copied", src, at));
    size_t put = 0;
    while (put < static_cast<size_t>(n)) {
      const ssize_t w = ::pwrite(out, buf.data() + put, static_cast<size_t>(n) - put,
                                 static_cast<off_t>(at + put));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return make_error(err("writing the copy"));
      put += static_cast<size_t>(w);
    }
    at += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace

Result<DiskCopy> copy_disk_image(const std::string& src, const std::string& dst) {
  Fd in{::open(src.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return make_error(err(fmt::format("cannot open disk image {}", src)));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) return make_error(err(fmt::format("cannot stat {}", src)));
  if (!S_ISREG(st.st_mode)) {
    return make_error(fmt::format("{} is not a regular file: only image files can be copied for "
                                  "a recording; use --disk-read-only to record without a copy",
                                  src));
  }
  DiskCopy result;
  result.bytes = static_cast<uint64_t>(st.st_size);
  const std::string tmp = dst + ".partial";
  ::unlink(tmp.c_str());
  Fd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
  if (out.fd < 0) return make_error(err(fmt::format("cannot create {}", tmp)));
  auto fail = [&tmp](std::string why) -> Result<DiskCopy> {
    ::unlink(tmp.c_str());
    return make_error(std::move(why));
  };
  if (::ioctl(out.fd, FICLONE, in.fd) == 0) {
    result.reflinked = true;
  } else {
    // A sparse copy: the data regions (SEEK_DATA/SEEK_HOLE), holes left as
    // holes by sizing the file first. Room is checked against the data the
    // source holds, which is what the copy will use.
    uint64_t data_bytes = 0;
    std::vector<std::pair<uint64_t, uint64_t>> regions;
    for (off_t at = 0; at < st.st_size;) {
      const off_t data = ::lseek(in.fd, at, SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // only a hole remains
        // A filesystem without SEEK_DATA: copy everything.
        regions.assign(1, {0, static_cast<uint64_t>(st.st_size)});
        data_bytes = static_cast<uint64_t>(st.st_size);
        break;
      }
      off_t hole = ::lseek(in.fd, data, SEEK_HOLE);
      if (hole < 0) hole = st.st_size;
      regions.emplace_back(static_cast<uint64_t>(data), static_cast<uint64_t>(hole));
      data_bytes += static_cast<uint64_t>(hole - data);
      at = hole;
    }
    struct statvfs vfs {};
    if (::fstatvfs(out.fd, &vfs) == 0) {
      const uint64_t room = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      if (room < data_bytes) {
        return fail(fmt::format(
            "no room for a copy of {} beside the log: it holds {} bytes of data and the "
            "filesystem of {} has {} free; record somewhere with more room, or use "
            "--disk-read-only",
            src, data_bytes, dst, room));
      }
    }
    if (::ftruncate(out.fd, st.st_size) != 0) return fail(err(fmt::format("cannot size {}", tmp)));
    for (const auto& [from, to] : regions) {
      if (Status s = copy_range(in.fd, out.fd, from, to, src); !s) return fail(s.error());
    }
    result.copied_bytes = data_bytes;
  }
  if (::fdatasync(out.fd) != 0) return fail(err(fmt::format("cannot sync {}", tmp)));
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    return fail(err(fmt::format("cannot rename {} to {}", tmp, dst)));
  }
  return result;
}

}  // namespace ftvm::hostio
