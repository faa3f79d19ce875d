// Tests for LogWriter and LogReader together: whole logs in memory and in
// files, truncation at every offset, and one malformed stream per test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "log/coding.h"
#include "log/log_reader.h"
#include "log/log_writer.h"

namespace ftvm::log {
namespace {

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

Header TestHeader() {
  Header h;
  h.ram_size = 128 << 20;
  h.cmdline = "console=ttyS0";
  h.kernel = {1000, Sha256{1, 2, 3}};
  h.initrd = ImageDigest{500, Sha256{4, 5, 6}};
  h.metadata = {{"ftvm.version", "test"}};
  return h;
}

std::string HeaderBytes() { return *encode_header(TestHeader()); }

std::string RecordBytes(const Record& r) { return *encode_record(r); }

// One record of every type, in a valid order.
std::vector<Record> EveryType() {
  Sha256 h{};
  h.fill(0xab);
  return {
      {0, Entropy{{1, 2, 3, 4, 5, 6, 7, 8}}},
      {100, ConsoleInput{{'e', 'c', 'h', 'o', '\n'}}},
      {100, NetFrame{Bytes(60, 0xee)}},
      {250, TimeSkip{1000000}},
      {300, DiskError{1, false, 16, 1024, 0, Bytes(1024, 0x5c)}},
      {1000, StateHash{h}},
      {1000, OutputDigest{h, 10, 2, 120}},
      {1500, Progress{}},
      {2000, End{0}},
  };
}

std::string WriteLog(const std::vector<Record>& records) {
  auto w = LogWriter::to_buffer(TestHeader());
  EXPECT_TRUE(w.ok()) << w.error();
  for (const Record& r : records) {
    Status s = w->append(r);
    EXPECT_TRUE(s.ok()) << s.error();
  }
  return w->buffer();
}

struct ReadResult {
  std::vector<Record> records;
  std::string error;  // empty: clean end
  bool ended = false;
};

ReadResult ReadAll(LogReader reader) {
  ReadResult out;
  if (auto h = reader.header(); !h) {
    out.error = h.error();
    return out;
  }
  for (;;) {
    auto r = reader.next();
    if (!r) {
      out.error = r.error();
      break;
    }
    if (!r->has_value()) break;
    out.records.push_back(**r);
  }
  out.ended = reader.ended();
  return out;
}

ReadResult ReadAll(const std::string& bytes) { return ReadAll(LogReader::from_bytes(bytes, "t.log")); }

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "ftvm_log_" + name; }

std::string FileContents(const std::string& path) {
  std::string s;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return s;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// --- whole logs ---

TEST(Log, EveryRecordTypeRoundTrips) {
  ReadResult r = ReadAll(WriteLog(EveryType()));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.records, EveryType());
  EXPECT_TRUE(r.ended);
}

TEST(Log, HeaderRoundTrips) {
  LogReader reader = LogReader::from_bytes(WriteLog({}));
  auto h = reader.header();
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_EQ(*h, TestHeader());
  EXPECT_EQ(reader.offset(), HeaderBytes().size());
}

TEST(Log, HeaderOnlyIsACleanEmptyLog) {
  ReadResult r = ReadAll(WriteLog({}));
  EXPECT_EQ(r.error, "");
  EXPECT_TRUE(r.records.empty());
  EXPECT_FALSE(r.ended);
}

TEST(Log, LogWithoutEndIsCleanButNotEnded) {
  std::vector<Record> records = EveryType();
  records.pop_back();
  ReadResult r = ReadAll(WriteLog(records));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.records, records);
  EXPECT_FALSE(r.ended);
}

TEST(Log, NextWithoutHeaderCallReadsTheHeader) {
  LogReader reader = LogReader::from_bytes(WriteLog(EveryType()));
  auto r = reader.next();
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, EveryType()[0]);
  EXPECT_TRUE(reader.header().ok());
}

TEST(Log, ReadsAtTheEndKeepReturningTheEnd) {
  LogReader reader = LogReader::from_bytes(WriteLog({{1, End{0}}}));
  ASSERT_TRUE(reader.next().ok());
  for (int i = 0; i < 3; ++i) {
    auto r = reader.next();
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_FALSE(r->has_value());
  }
}

TEST(Log, ReaderOffsetsMatchWriterSizes) {
  auto w = LogWriter::to_buffer(TestHeader());
  ASSERT_TRUE(w.ok());
  std::vector<uint64_t> ends;
  for (const Record& r : EveryType()) {
    ASSERT_TRUE(w->append(r).ok());
    ends.push_back(w->size());
  }
  EXPECT_EQ(w->size(), w->buffer().size());
  LogReader reader = LogReader::from_bytes(w->buffer());
  for (uint64_t end : ends) {
    ASSERT_TRUE(reader.next().ok());
    EXPECT_EQ(reader.offset(), end);
  }
}

// --- truncation ---

// Cutting a valid log anywhere gives its complete records, then a clean end
// exactly at record boundaries and a truncation error inside a header or
// record (docs/log-format.md "Reading and errors").
TEST(LogTruncation, EveryOffset) {
  const std::vector<Record> records = EveryType();
  const std::string full = WriteLog(records);
  std::vector<size_t> boundaries{HeaderBytes().size()};
  for (const Record& r : records) boundaries.push_back(boundaries.back() + RecordBytes(r).size());
  ASSERT_EQ(boundaries.back(), full.size());

  for (size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("cut at " + std::to_string(len));
    ReadResult r = ReadAll(full.substr(0, len));
    if (len < boundaries[0]) {
      EXPECT_TRUE(r.records.empty());
      EXPECT_TRUE(Contains(r.error, len == 0 ? "t.log: offset 0: empty input"
                                             : "t.log: offset 0: truncated header"))
          << r.error;
      continue;
    }
    size_t complete = 0;  // records wholly inside the cut
    while (complete < records.size() && boundaries[complete + 1] <= len) ++complete;
    EXPECT_EQ(r.records, std::vector<Record>(records.begin(), records.begin() + complete));
    if (len == boundaries[complete]) {
      EXPECT_EQ(r.error, "");
    } else {
      EXPECT_TRUE(Contains(r.error, "t.log: offset " + std::to_string(boundaries[complete]) +
                                        ": truncated record"))
          << r.error;
    }
  }
}

TEST(LogTruncation, MessageSaysHowMuchIsMissing) {
  const std::string full = WriteLog({{5, ConsoleInput{{'a', 'b', 'c'}}}});
  ReadResult r = ReadAll(full.substr(0, full.size() - 2));
  const size_t at = HeaderBytes().size();
  EXPECT_EQ(r.error, "t.log: offset " + std::to_string(at) +
                         ": truncated record: it needs 24 bytes, only 22 remain");
}

TEST(LogTruncation, CutInsideTheRecordHeader) {
  const std::string full = WriteLog({{5, ConsoleInput{{'a'}}}});
  ReadResult r = ReadAll(full.substr(0, HeaderBytes().size() + 3));
  EXPECT_TRUE(Contains(r.error, "truncated record: its header needs 17 bytes, only 3 remain"))
      << r.error;
}

TEST(LogTruncation, HugeClaimedLengthAtTheEndIsTruncationNotAllocation) {
  // A valid header claiming a 1 MiB payload that is not there.
  std::string rec = RecordBytes({5, NetFrame{{1}}}).substr(0, kRecordHeaderSize);
  for (int i = 0; i < 4; ++i) rec[9 + i] = static_cast<char>(kMaxPayloadSize >> (8 * i));
  const uint32_t crc = internal::crc32_of(internal::as_bytes(rec).first(13));
  for (int i = 0; i < 4; ++i) rec[13 + i] = static_cast<char>(crc >> (8 * i));
  ReadResult r = ReadAll(HeaderBytes() + rec);
  EXPECT_TRUE(Contains(r.error, "truncated record: it needs 1048597 bytes, only 17 remain"))
      << r.error;
}

// --- malformed streams, one per test ---

TEST(LogCorruption, EmptyInput) {
  EXPECT_EQ(ReadAll(std::string()).error, "t.log: offset 0: empty input, not an event log");
}

TEST(LogCorruption, NotALog) {
  EXPECT_TRUE(Contains(ReadAll("#!/bin/sh\necho hi\n").error, "t.log: offset 0: not an ftvm "
                                                               "event log"));
}

TEST(LogCorruption, VersionMismatchNamesBothVersions) {
  std::string bytes = WriteLog(EveryType());
  bytes[8] = 9;
  const std::string e = ReadAll(bytes).error;
  EXPECT_EQ(e, "t.log: offset 8: unsupported log format version 9: this ftvm reads versions 1 to "
               "2 (the log was written by a newer ftvm)");
}

// The header of a log, rewritten as version `version` (its checksum fixed).
std::string WithVersion(std::string bytes, uint8_t version) {
  bytes[8] = static_cast<char>(version);
  const uint32_t body = static_cast<uint8_t>(bytes[12]) | static_cast<uint8_t>(bytes[13]) << 8 |
                        static_cast<uint8_t>(bytes[14]) << 16 |
                        static_cast<uint32_t>(static_cast<uint8_t>(bytes[15])) << 24;
  const size_t crc_at = kHeaderPrefixSize + body;
  const uint32_t crc = internal::crc32_of(internal::as_bytes(bytes).first(crc_at));
  for (int i = 0; i < 4; ++i) bytes[crc_at + i] = static_cast<char>(crc >> (8 * i));
  return bytes;
}

TEST(LogVersions, AVersion1LogIsStillRead) {
  std::vector<Record> records = EveryType();
  std::erase_if(records, [](const Record& r) { return r.type() == RecordType::kDiskError; });
  LogReader reader = LogReader::from_bytes(WithVersion(WriteLog(records), 1), "t.log");
  ReadResult r = ReadAll(std::move(reader));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.records, records);
}

TEST(LogVersions, ADiskErrorInAVersion1LogIsRefused) {
  const std::string e = ReadAll(WithVersion(WriteLog(EveryType()), 1)).error;
  EXPECT_TRUE(Contains(e, "a disk-error record in a version-1 log (it is new in version 2)")) << e;
}

TEST(LogCorruption, HeaderChecksum) {
  std::string bytes = WriteLog(EveryType());
  bytes[40] ^= 1;  // kernel hash
  EXPECT_TRUE(Contains(ReadAll(bytes).error, "header checksum mismatch"));
}

TEST(LogCorruption, RecordChecksumStopsAtThatRecord) {
  const std::vector<Record> records = EveryType();
  std::string bytes = WriteLog(records);
  const size_t second = HeaderBytes().size() + RecordBytes(records[0]).size();
  bytes[second + kRecordHeaderSize] ^= 0x01;  // first payload byte of the second record
  ReadResult r = ReadAll(bytes);
  EXPECT_EQ(r.records, std::vector<Record>{records[0]});
  EXPECT_TRUE(Contains(r.error, "t.log: offset " + std::to_string(second) +
                                    ": record checksum mismatch"))
      << r.error;
}

TEST(LogCorruption, UnknownRecordType) {
  std::string rec = RecordBytes({5, Progress{}});
  rec[0] = 0x7f;
  auto fix = [&rec](size_t crc_at) {
    const uint32_t crc = internal::crc32_of(internal::as_bytes(rec).first(crc_at));
    for (int i = 0; i < 4; ++i) rec[crc_at + i] = static_cast<char>(crc >> (8 * i));
  };
  fix(13);
  fix(rec.size() - 4);
  ReadResult r = ReadAll(HeaderBytes() + rec);
  EXPECT_TRUE(Contains(r.error, "unknown record type 0x7f")) << r.error;
}

TEST(LogCorruption, InstretGoingBackwards) {
  const std::string first = RecordBytes({200, ConsoleInput{{'a'}}});
  const std::string bytes =
      HeaderBytes() + first + RecordBytes({199, ConsoleInput{{'b'}}});
  ReadResult r = ReadAll(bytes);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.error, "t.log: offset " + std::to_string(HeaderBytes().size() + first.size()) +
                         ": console-input record at instret 199 comes after a record at instret "
                         "200 (instrets must not decrease)");
}

TEST(LogCorruption, RecordAfterEnd) {
  const std::string end = RecordBytes({10, End{0}});
  ReadResult r = ReadAll(HeaderBytes() + end + RecordBytes({10, Progress{}}));
  ASSERT_EQ(r.records.size(), 1u);
  const size_t at = HeaderBytes().size();
  EXPECT_EQ(r.error, "t.log: offset " + std::to_string(at + end.size()) +
                         ": data after the end record (at offset " + std::to_string(at) + ")");
}

TEST(LogCorruption, OneGarbageByteAfterEnd) {
  ReadResult r = ReadAll(WriteLog(EveryType()) + "\n");
  EXPECT_EQ(r.records, EveryType());
  EXPECT_TRUE(Contains(r.error, "data after the end record")) << r.error;
}

TEST(LogCorruption, GarbageAfterTheLastRecordWithoutEnd) {
  ReadResult r = ReadAll(WriteLog({{1, Progress{}}}) + std::string(30, '\0'));
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(Contains(r.error, "record header checksum mismatch")) << r.error;
}

TEST(LogCorruption, EveryBitFlipIsAnErrorNeverASilentChange) {
  const std::vector<Record> records = EveryType();
  const std::string good = WriteLog(records);
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string bad = good;
      bad[i] ^= static_cast<char>(1 << bit);
      ReadResult r = ReadAll(bad);
      EXPECT_NE(r.error, "") << "byte " << i << " bit " << bit;
      ASSERT_LE(r.records.size(), records.size());
      EXPECT_EQ(r.records, std::vector<Record>(records.begin(), records.begin() + r.records.size()));
    }
  }
}

TEST(LogCorruption, ErrorIsFinal) {
  std::string bytes = WriteLog(EveryType());
  bytes[bytes.size() - 1] ^= 1;
  LogReader reader = LogReader::from_bytes(bytes, "t.log");
  std::string first;
  for (;;) {
    auto r = reader.next();
    if (!r) {
      first = r.error();
      break;
    }
    ASSERT_TRUE(r->has_value());
  }
  auto again = reader.next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), first);
}

TEST(LogCorruption, HeaderErrorIsFinal) {
  LogReader reader = LogReader::from_bytes("nope", "t.log");
  ASSERT_FALSE(reader.header().ok());
  auto r = reader.next();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error(), "not an ftvm event log"));
}

// --- the writer's rules ---

TEST(LogWriter, RefusesDecreasingInstretAndStaysUsable) {
  auto w = LogWriter::to_buffer(TestHeader());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->append({10, Progress{}}).ok());
  const std::string before = w->buffer();
  Status s = w->append({9, Progress{}});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "cannot append: offset " + std::to_string(before.size()) +
                                      ": progress record at instret 9 comes after a record at "
                                      "instret 10"))
      << s.error();
  EXPECT_EQ(w->buffer(), before);
  EXPECT_TRUE(w->append({10, End{0}}).ok());
}

TEST(LogWriter, RefusesRecordsAfterEnd) {
  auto w = LogWriter::to_buffer(TestHeader());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->append({10, End{0}}).ok());
  EXPECT_TRUE(w->ended());
  Status s = w->append({11, Progress{}});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "data after the end record")) << s.error();
}

TEST(LogWriter, RefusesInvalidRecordWithoutWriting) {
  auto w = LogWriter::to_buffer(TestHeader());
  ASSERT_TRUE(w.ok());
  const size_t size = w->size();
  EXPECT_FALSE(w->append({1, NetFrame{}}).ok());
  EXPECT_EQ(w->size(), size);
  EXPECT_EQ(w->last_instret(), 0u);
}

TEST(LogWriter, RefusesInvalidHeader) {
  Header h = TestHeader();
  h.metadata[""] = "x";
  EXPECT_FALSE(LogWriter::to_buffer(h).ok());
}

// --- files ---

TEST(LogFile, WriteThenReadBack) {
  const std::string path = TempPath("roundtrip");
  {
    auto w = LogWriter::create(path, TestHeader());
    ASSERT_TRUE(w.ok()) << w.error();
    for (const Record& r : EveryType()) ASSERT_TRUE(w->append(r).ok());
  }
  auto reader = LogReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error();
  ReadResult r = ReadAll(std::move(reader).value());
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.records, EveryType());
  EXPECT_TRUE(r.ended);
  ::unlink(path.c_str());
}

TEST(LogFile, HeaderIsWrittenAtCreation) {
  const std::string path = TempPath("header");
  auto w = LogWriter::create(path, TestHeader());
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_EQ(FileContents(path), HeaderBytes());
  ::unlink(path.c_str());
}

TEST(LogFile, AppendsAreBufferedUntilFlush) {
  const std::string path = TempPath("buffered");
  auto w = LogWriter::create(path, TestHeader());
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE(w->append({1, ConsoleInput{{'a'}}}).ok());
  EXPECT_EQ(FileSize(path), HeaderBytes().size());
  ASSERT_TRUE(w->flush().ok());
  EXPECT_EQ(FileSize(path), w->size());
  EXPECT_TRUE(w->buffer().empty());
  ::unlink(path.c_str());
}

TEST(LogFile, FullBufferIsWrittenOut) {
  const std::string path = TempPath("spill");
  auto w = LogWriter::create(path, TestHeader(), WriterOptions{.buffer_size = 100});
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE(w->append({1, NetFrame{Bytes(100, 1)}}).ok());
  EXPECT_EQ(FileSize(path), w->size());
  ::unlink(path.c_str());
}

TEST(LogFile, EndFlushes) {
  const std::string path = TempPath("end");
  auto w = LogWriter::create(path, TestHeader());
  ASSERT_TRUE(w.ok()) << w.error();
  ASSERT_TRUE(w->append({1, ConsoleInput{{'a'}}}).ok());
  ASSERT_TRUE(w->append({2, End{0}}).ok());
  EXPECT_EQ(FileSize(path), w->size());
  ::unlink(path.c_str());
}

TEST(LogFile, DestructorFlushes) {
  const std::string path = TempPath("dtor");
  uint64_t size = 0;
  {
    auto w = LogWriter::create(path, TestHeader());
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_TRUE(w->append({1, ConsoleInput{{'a'}}}).ok());
    size = w->size();
  }
  EXPECT_EQ(FileSize(path), size);
  ::unlink(path.c_str());
}

TEST(LogFile, ManyRecordsAcrossReadChunks) {
  // Larger than the reader's 64 KiB read chunk and the writer's buffer, with
  // records straddling chunk boundaries, and one payload at the size limit.
  const std::string path = TempPath("many");
  std::vector<Record> records;
  for (uint64_t i = 0; i < 20000; ++i) {
    records.push_back({i * 3, ConsoleInput{Bytes(1 + i % 37, static_cast<uint8_t>(i))}});
  }
  records.push_back({60000, NetFrame{Bytes(kMaxPayloadSize, 0x42)}});
  records.push_back({60001, End{7}});
  {
    auto w = LogWriter::create(path, TestHeader(), WriterOptions{.sync_on_end = false});
    ASSERT_TRUE(w.ok()) << w.error();
    for (const Record& r : records) ASSERT_TRUE(w->append(r).ok());
  }
  auto reader = LogReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error();
  ReadResult r = ReadAll(std::move(reader).value());
  EXPECT_EQ(r.error, "");
  EXPECT_TRUE(r.records == records) << r.records.size() << " records read";
  ::unlink(path.c_str());
}

TEST(LogFile, TruncatedFileNamesThePath) {
  const std::string path = TempPath("truncated");
  {
    auto w = LogWriter::create(path, TestHeader());
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_TRUE(w->append({1, ConsoleInput{{'a', 'b'}}}).ok());
  }
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(FileSize(path) - 1)), 0);
  auto reader = LogReader::open(path);
  ASSERT_TRUE(reader.ok());
  ReadResult r = ReadAll(std::move(reader).value());
  EXPECT_EQ(r.error, path + ": offset " + std::to_string(HeaderBytes().size()) +
                         ": truncated record: it needs 23 bytes, only 22 remain");
  ::unlink(path.c_str());
}

TEST(LogFile, OpenMissingFile) {
  auto r = LogReader::open("/nonexistent/run.ftlog");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error(), "cannot open event log /nonexistent/run.ftlog: No such file"))
      << r.error();
}

TEST(LogFile, ReadErrorIsReported) {
  auto reader = LogReader::open("/");  // opens, but read(2) fails with EISDIR
  ASSERT_TRUE(reader.ok());
  auto h = reader->header();
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(Contains(h.error(), "/: offset 0: cannot read: Is a directory")) << h.error();
}

TEST(LogFile, WriteErrorOnTheHeader) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto w = LogWriter::to_fd(fd, "/dev/full", TestHeader());
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(Contains(w.error(), "cannot write event log /dev/full at offset 0: No space left"))
      << w.error();
  ::close(fd);
}

TEST(LogFile, WriteErrorIsFinal) {
  const std::string path = TempPath("write_error");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto w = LogWriter::to_fd(fd, path, TestHeader());
  ASSERT_TRUE(w.ok()) << w.error();
  // The disk fills up under the writer.
  const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  ASSERT_EQ(::dup2(full, fd), fd);
  ::close(full);
  ASSERT_TRUE(w->append({1, ConsoleInput{{'a'}}}).ok());
  Status s = w->flush();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "cannot write event log " + path + " at offset " +
                                      std::to_string(HeaderBytes().size()) + ": No space left"))
      << s.error();
  Status again = w->append({2, Progress{}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), s.error());
  EXPECT_EQ(w->sync().error(), s.error());
  ::close(fd);
  ::unlink(path.c_str());
}

TEST(LogFile, ReaderFromFd) {
  const std::string path = TempPath("fd");
  {
    auto w = LogWriter::create(path, TestHeader());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->append({3, End{0}}).ok());
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    ReadResult r = ReadAll(LogReader::from_fd(fd, "pipe"));
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.records, (std::vector<Record>{{3, End{0}}}));
  }
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace ftvm::log
