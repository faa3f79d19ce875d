// LogReader: reads and verifies an event log from memory or a file
// (docs/log-format.md "Reading and errors").
//
// Every record the reader returns has passed every check of the format,
// including the stream rules (non-decreasing instret, nothing after kEnd).
// The first problem stops the reader for good: its error names the input, the
// byte offset and what is wrong, and every later call returns it again. A
// reader never trusts a length before checking it against the format's
// limits, so it allocates at most about 1 MiB beyond its read buffer whatever
// the input. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "log/header.h"
#include "log/record.h"
#include "util/result.h"

namespace ftvm::log {

class LogReader {
 public:
  // Reads the log held in `bytes`. `name` prefixes error messages.
  static LogReader from_bytes(std::string bytes, std::string name = "event log");

  // Opens the file at `path` and reads it incrementally; the reader owns the
  // file. Errors name the path.
  static Result<LogReader> open(const std::string& path);

  // Reads from `fd` (blocking), which the caller owns and keeps open while the
  // reader lives, starting at its current position.
  static LogReader from_fd(int fd, std::string name);

  LogReader(LogReader&& other) noexcept;
  LogReader& operator=(LogReader&& other) noexcept;
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;
  ~LogReader();

  // The verified header; read on the first call (or the first next()).
  Result<Header> header();

  // The next record; nullopt at a clean end: the input ends at a record
  // boundary (after kEnd, or before it if the log was cut short -- see
  // ended()). A cut inside a record is an error.
  Result<std::optional<Record>> next();

  // Whether the kEnd record has been returned: the log is complete.
  bool ended() const { return order_.ended(); }
  // The log's format version (known once the header is read).
  uint32_t version() const { return version_; }

  // Stream offset of the next unread byte: the end of the header or of the
  // last record returned; at an error, the start of what was wrong.
  uint64_t offset() const { return buf_start_ + pos_; }

 private:
  LogReader(int fd, bool owns_fd, std::string name, std::string bytes, bool eof)
      : fd_(fd), owns_fd_(owns_fd), eof_(eof), name_(std::move(name)), buf_(std::move(bytes)) {}
  // Reads until at least `want` unread bytes are buffered or the input ends;
  // returns how many unread bytes are buffered.
  Result<size_t> fill(size_t want);
  std::span<const uint8_t> unread(size_t n) const;
  Error fail(const std::string& message);
  void close_fd();

  int fd_ = -1;  // -1: all input is in buf_
  bool owns_fd_ = false;
  bool eof_ = false;
  std::string name_;
  std::string buf_;
  size_t pos_ = 0;           // first unread byte in buf_
  uint64_t buf_start_ = 0;   // stream offset of buf_[0]
  std::optional<Header> header_;
  std::optional<Error> error_;
  RecordOrder order_;
  uint32_t version_ = kFormatVersion;  // the header's
};

}  // namespace ftvm::log
