// LogWriter: appends records to an event log in a file or in memory
// (docs/log-format.md "Writing").
//
// The writer owns the stream rules: it refuses a record that could not be
// encoded, whose instret is below the previous record's, or that follows kEnd,
// and writes nothing for it. Not thread-safe: one thread appends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "log/header.h"
#include "log/record.h"
#include "util/result.h"

namespace ftvm::log {

struct WriterOptions {
  // Encoded records collect in memory until this many bytes are pending, then
  // go to the file with write(2). flush() writes them out at any time.
  size_t buffer_size = 64 * 1024;
  // Appending kEnd always flushes; with this set it also fdatasyncs.
  bool sync_on_end = true;
};

class LogWriter {
 public:
  // A log kept in memory; buffer() is the whole log so far. flush() and sync()
  // do nothing.
  static Result<LogWriter> to_buffer(const Header& header);

  // A log written to `fd`, which must be open for blocking writes; the writer
  // does not own or close it, and the caller keeps it open while the writer
  // lives. `name` (e.g. the path) appears in error messages. The header is
  // written before this returns.
  static Result<LogWriter> to_fd(int fd, std::string name, const Header& header,
                                 WriterOptions options = {});

  // Creates or truncates the file at `path` (mode 0644) and writes the log to
  // it; the writer owns and closes the file.
  static Result<LogWriter> create(const std::string& path, const Header& header,
                                  WriterOptions options = {});

  LogWriter(LogWriter&& other) noexcept;
  LogWriter& operator=(LogWriter&& other) noexcept;
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;
  // Flushes what is pending, ignoring errors (call flush() to see them), and
  // closes the file if the writer owns it.
  ~LogWriter();

  // Encodes `record` at the end of the log. An invalid record is refused with
  // an error and the writer stays usable; an I/O error leaves it failed.
  Status append(const Record& record);
  // Writes pending records to the file: after this they survive a crash of
  // this process.
  Status flush();
  // flush() then fdatasync(2): after this they survive a crash of the host.
  Status sync();

  // In memory: the whole log. To a file: the bytes not yet written out.
  const std::string& buffer() const { return buf_; }
  // Size of the log so far (header and records, written or pending): the
  // offset at which the next record will start.
  uint64_t size() const { return size_; }
  bool ended() const { return order_.ended(); }
  uint64_t last_instret() const { return order_.last_instret(); }

 private:
  LogWriter(int fd, bool owns_fd, std::string name, WriterOptions options)
      : fd_(fd), owns_fd_(owns_fd), name_(std::move(name)), options_(options) {}
  Status start(const Header& header);
  Status write_out();
  void close_fd();

  int fd_ = -1;  // -1: in memory
  bool owns_fd_ = false;
  std::string name_;
  WriterOptions options_;
  std::string buf_;
  uint64_t size_ = 0;
  RecordOrder order_;
  std::optional<Error> failed_;
};

}  // namespace ftvm::log
