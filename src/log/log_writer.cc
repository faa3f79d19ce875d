// LogWriter: buffered appends, explicit flush and sync.
#include "log/log_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace ftvm::log {

Result<LogWriter> LogWriter::to_buffer(const Header& header) {
  LogWriter w(-1, false, "event log", WriterOptions{});
  if (Status s = w.start(header); !s) return make_error(s.error());
  return w;
}

Result<LogWriter> LogWriter::to_fd(int fd, std::string name, const Header& header,
                                   WriterOptions options) {
  FTVM_CHECK(fd >= 0);
  LogWriter w(fd, false, std::move(name), options);
  if (Status s = w.start(header); !s) return make_error(s.error());
  return w;
}

Result<LogWriter> LogWriter::create(const std::string& path, const Header& header,
                                    WriterOptions options) {
  // Check the header before touching the file system.
  auto encoded = encode_header(header);
  if (!encoded) return make_error(fmt::format("{}: {}", path, encoded.error()));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(fmt::format("cannot create event log {}: {}", path, std::strerror(errno)));
  }
  LogWriter w(fd, true, path, options);
  if (Status s = w.start(header); !s) return make_error(s.error());
  return w;
}

LogWriter::LogWriter(LogWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      owns_fd_(std::exchange(other.owns_fd_, false)),
      name_(std::move(other.name_)),
      options_(other.options_),
      buf_(std::move(other.buf_)),
      size_(other.size_),
      order_(other.order_),
      failed_(std::move(other.failed_)) {
  other.buf_.clear();
}

LogWriter& LogWriter::operator=(LogWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) (void)flush();
    close_fd();
    fd_ = std::exchange(other.fd_, -1);
    owns_fd_ = std::exchange(other.owns_fd_, false);
    name_ = std::move(other.name_);
    options_ = other.options_;
    buf_ = std::move(other.buf_);
    other.buf_.clear();
    size_ = other.size_;
    order_ = other.order_;
    failed_ = std::move(other.failed_);
  }
  return *this;
}

LogWriter::~LogWriter() {
  if (fd_ >= 0) (void)flush();
  close_fd();
}

void LogWriter::close_fd() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
  owns_fd_ = false;
}

Status LogWriter::start(const Header& header) {
  auto encoded = encode_header(header);
  if (!encoded) return make_error(fmt::format("{}: {}", name_, encoded.error()));
  buf_ = std::move(encoded).value();
  size_ = buf_.size();
  return flush();
}

Status LogWriter::append(const Record& record) {
  if (failed_) return *failed_;
  if (Status s = check_record(record); !s) return make_error(fmt::format("{}: {}", name_, s.error()));
  if (Status s = order_.accept(record, size_); !s) {
    return make_error(fmt::format("{}: cannot append: {}", name_, s.error()));
  }
  const size_t before = buf_.size();
  FTVM_CHECK(append_record(buf_, record).ok());
  size_ += buf_.size() - before;
  if (record.type() == RecordType::kEnd) return options_.sync_on_end ? sync() : flush();
  if (fd_ >= 0 && buf_.size() >= options_.buffer_size) return flush();
  return {};
}

Status LogWriter::flush() {
  if (failed_) return *failed_;
  if (fd_ < 0) return {};
  return write_out();
}

Status LogWriter::sync() {
  if (Status s = flush(); !s) return s;
  if (fd_ < 0) return {};
  if (::fdatasync(fd_) != 0) {
    failed_ = make_error(fmt::format("cannot sync event log {}: {}", name_, std::strerror(errno)));
    return *failed_;
  }
  return {};
}

Status LogWriter::write_out() {
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      const uint64_t at = size_ - (buf_.size() - done);
      buf_.erase(0, done);
      failed_ = make_error(fmt::format("cannot write event log {} at offset {}: {}", name_, at,
                                       std::strerror(err)));
      return *failed_;
    }
    done += static_cast<size_t>(n);
  }
  buf_.clear();
  return {};
}

}  // namespace ftvm::log
