// LogReader: incremental reads through one buffer, whatever the source.
#include "log/log_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace ftvm::log {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
}

LogReader LogReader::from_bytes(std::string bytes, std::string name) {
  return LogReader(-1, false, std::move(name), std::move(bytes), true);
}

Result<LogReader> LogReader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(fmt::format("cannot open event log {}: {}", path, std::strerror(errno)));
  }
  return LogReader(fd, true, path, {}, false);
}

LogReader LogReader::from_fd(int fd, std::string name) {
  FTVM_CHECK(fd >= 0);
  return LogReader(fd, false, std::move(name), {}, false);
}

LogReader::LogReader(LogReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      owns_fd_(std::exchange(other.owns_fd_, false)),
      eof_(other.eof_),
      name_(std::move(other.name_)),
      buf_(std::move(other.buf_)),
      pos_(other.pos_),
      buf_start_(other.buf_start_),
      header_(std::move(other.header_)),
      error_(std::move(other.error_)),
      order_(other.order_),
      version_(other.version_) {}

LogReader& LogReader::operator=(LogReader&& other) noexcept {
  if (this != &other) {
    close_fd();
    fd_ = std::exchange(other.fd_, -1);
    owns_fd_ = std::exchange(other.owns_fd_, false);
    eof_ = other.eof_;
    name_ = std::move(other.name_);
    buf_ = std::move(other.buf_);
    pos_ = other.pos_;
    buf_start_ = other.buf_start_;
    header_ = std::move(other.header_);
    error_ = std::move(other.error_);
    order_ = other.order_;
    version_ = other.version_;
  }
  return *this;
}

LogReader::~LogReader() { close_fd(); }

void LogReader::close_fd() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
  owns_fd_ = false;
}

Error LogReader::fail(const std::string& message) {
  error_ = make_error(fmt::format("{}: {}", name_, message));
  return *error_;
}

std::span<const uint8_t> LogReader::unread(size_t n) const {
  FTVM_CHECK(pos_ + n <= buf_.size());
  return {reinterpret_cast<const uint8_t*>(buf_.data()) + pos_, n};
}

Result<size_t> LogReader::fill(size_t want) {
  while (buf_.size() - pos_ < want && !eof_) {
    if (pos_ > 0) {  // drop what has been consumed
      buf_.erase(0, pos_);
      buf_start_ += pos_;
      pos_ = 0;
    }
    const size_t old = buf_.size();
    const size_t chunk = std::max(want - old, kReadChunk);
    buf_.resize(old + chunk);
    ssize_t n;
    do {
      n = ::read(fd_, buf_.data() + old, chunk);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      const int err = errno;
      buf_.resize(old);
      return fail(fmt::format("offset {}: cannot read: {}", buf_start_ + old, std::strerror(err)));
    }
    buf_.resize(old + static_cast<size_t>(n));
    if (n == 0) eof_ = true;
  }
  return buf_.size() - pos_;
}

Result<Header> LogReader::header() {
  if (header_) return *header_;
  if (error_) return *error_;
  auto avail = fill(kHeaderPrefixSize);
  if (!avail) return make_error(avail.error());
  auto size = peek_header_size(unread(*avail));
  if (!size) return fail(size.error());
  if (!size->has_value()) {
    if (*avail == 0) return fail("offset 0: empty input, not an event log");
    return fail(fmt::format("offset 0: truncated header: only {} bytes", *avail));
  }
  const size_t n = **size;
  avail = fill(n);
  if (!avail) return make_error(avail.error());
  if (*avail < n) {
    return fail(fmt::format("offset 0: truncated header: it needs {} bytes, only {} remain", n,
                            *avail));
  }
  auto decoded = decode_header(unread(n));
  if (!decoded) return fail(decoded.error());
  FTVM_CHECK(decoded->has_value() && (*decoded)->size == n);
  header_ = std::move((*decoded)->header);
  version_ = (*decoded)->version;
  pos_ += n;
  return *header_;
}

Result<std::optional<Record>> LogReader::next() {
  if (error_) return *error_;
  if (!header_) {
    if (auto h = header(); !h) return make_error(h.error());
  }
  const uint64_t at = offset();
  if (order_.ended()) {
    auto avail = fill(1);
    if (!avail) return make_error(avail.error());
    if (*avail == 0) return std::optional<Record>{};
    return fail(fmt::format("offset {}: data after the end record (at offset {})", at,
                            *order_.end_offset()));
  }
  auto avail = fill(kRecordHeaderSize);
  if (!avail) return make_error(avail.error());
  if (*avail == 0) return std::optional<Record>{};
  auto size = peek_record_size(unread(*avail), at);
  if (!size) return fail(size.error());
  if (!size->has_value()) {
    return fail(fmt::format(
        "offset {}: truncated record: its header needs {} bytes, only {} remain", at,
        kRecordHeaderSize, *avail));
  }
  const size_t n = **size;
  avail = fill(n);
  if (!avail) return make_error(avail.error());
  if (*avail < n) {
    return fail(fmt::format("offset {}: truncated record: it needs {} bytes, only {} remain", at,
                            n, *avail));
  }
  auto decoded = decode_record(unread(n), at);
  if (!decoded) return fail(decoded.error());
  FTVM_CHECK(decoded->has_value() && (*decoded)->size == n);
  if (!version_has_record_type(version_, (*decoded)->record.type())) {
    return fail(fmt::format("offset {}: a {} record in a version-{} log (it is new in version 2)",
                            at, record_type_name((*decoded)->record.type()), version_));
  }
  if (Status s = order_.accept((*decoded)->record, at); !s) return fail(s.error());
  pos_ += n;
  return std::optional<Record>{std::move((*decoded)->record)};
}

}  // namespace ftvm::log
