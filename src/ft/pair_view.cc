// The pair as a whole (see pair_view.h).
#include "ft/pair_view.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

namespace ftvm::ft {

std::string_view history_kind_name(HistoryKind k) {
  switch (k) {
    case HistoryKind::kStart:
      return "start";
    case HistoryKind::kFailover:
      return "failover";
    case HistoryKind::kSolo:
      return "solo";
    case HistoryKind::kReprotect:
      return "reprotect";
    case HistoryKind::kMigrate:
      return "migrate";
  }
  return "?";
}

Status append_history(const std::string& path, const HistoryEntry& e) {
  const nlohmann::json line = {{"epoch", e.epoch},
                               {"host", e.host},
                               {"kind", std::string(history_kind_name(e.kind))},
                               {"at_unix_ms", e.at_unix_ms}};
  std::string text = line.dump() + "\n";
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(fmt::format("cannot open the pair's history {}: {}", path,
                                  std::strerror(errno)));
  }
  // A line torn by a crash is ended first, so that this entry is whole.
  struct stat st {};
  char last = '\n';
  if (::fstat(fd, &st) == 0 && st.st_size > 0 && ::pread(fd, &last, 1, st.st_size - 1) == 1 &&
      last != '\n') {
    text.insert(text.begin(), '\n');
  }
  // One write of a short line with O_APPEND: two nodes appending at once
  // never interleave within a line.
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int write_errno = errno;
  const bool synced = n == static_cast<ssize_t>(text.size()) && ::fdatasync(fd) == 0;
  const int sync_errno = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return make_error(fmt::format("cannot append to the pair's history {}: {}", path,
                                  n < 0 ? std::strerror(write_errno) : "short write"));
  }
  if (!synced) {
    return make_error(fmt::format("cannot sync the pair's history {}: {}", path,
                                  std::strerror(sync_errno)));
  }
  return {};
}

std::string disk_mark_path(const std::string& disk_path) { return disk_path + ".epoch.json"; }

Status write_disk_mark(const std::string& disk_path, const HistoryEntry& e, uint64_t instret) {
  const std::string path = disk_mark_path(disk_path);
  const std::string tmp = path + ".partial";
  const std::string text = nlohmann::json({{"epoch", e.epoch},
                                           {"host", e.host},
                                           {"kind", std::string(history_kind_name(e.kind))},
                                           {"instret", instret},
                                           {"at_unix_ms", e.at_unix_ms}})
                               .dump() +
                           "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fdatasync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e2 = written ? errno : err;
    ::unlink(tmp.c_str());
    return make_error(fmt::format("cannot write {}: {}", path, std::strerror(e2)));
  }
  return {};
}

Status remove_disk_mark(const std::string& disk_path) {
  const std::string path = disk_mark_path(disk_path);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return make_error(fmt::format("cannot remove {}: {}", path, std::strerror(errno)));
  }
  // The removal itself must be durable before the copy is overwritten.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    return make_error(fmt::format("cannot sync {}: {}", dir, std::strerror(e)));
  }
  ::close(fd);
  return {};
}

std::optional<uint64_t> read_disk_mark_epoch(const std::string& disk_path) {
  std::ifstream in(disk_mark_path(disk_path));
  if (!in) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("epoch") ||
      !j["epoch"].is_number_unsigned()) {
    return std::nullopt;
  }
  return j["epoch"].get<uint64_t>();
}

CopyChoice most_advanced_copy(std::optional<uint64_t> mark_a, std::optional<uint64_t> mark_b,
                              const nlohmann::json& history) {
  auto mark = [](std::optional<uint64_t> m) { return m ? std::to_string(*m) : "none"; };
  if (mark_a || mark_b) {
    const bool a = mark_a.value_or(0) >= mark_b.value_or(0);
    return {a ? "a" : "b", fmt::format("its node was live at epoch {}, the other's at {}",
                                       mark(a ? mark_a : mark_b), mark(a ? mark_b : mark_a))};
  }
  uint64_t top = 0;
  std::string holder;
  if (history.is_array()) {
    for (const nlohmann::json& e : history) {
      const uint64_t epoch = e.value("epoch", uint64_t{0});
      if (epoch >= top) {
        top = epoch;
        holder = e.value("host", std::string());
      }
    }
  }
  if (holder == "host-a" || holder == "host-b") {
    return {holder.substr(5),
            fmt::format("no copy is marked; the history says host {} held epoch {}",
                        holder.substr(5), top)};
  }
  return {"a", "no copy is marked and no history names a holder: host a's, where the pair starts"};
}

nlohmann::json read_history(const std::string& path, size_t* skipped) {
  nlohmann::json out = nlohmann::json::array();
  if (skipped) *skipped = 0;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("epoch") ||
        !j["epoch"].is_number_unsigned() || !j.contains("kind") || !j["kind"].is_string()) {
      if (skipped) ++*skipped;
      continue;
    }
    out.push_back(std::move(j));
  }
  return out;
}

namespace {

std::optional<uint64_t> epoch_of(const nlohmann::json& s) {
  if (!s.is_object() || !s.contains("epoch") || !s["epoch"].is_number_unsigned()) return {};
  return s["epoch"].get<uint64_t>();
}

std::string str(const nlohmann::json& s, const char* key) {
  return s.is_object() && s.contains(key) && s[key].is_string() ? s[key].get<std::string>() : "";
}

}  // namespace

nlohmann::json pair_summary(const std::vector<HostView>& hosts, const nlohmann::json& history) {
  std::optional<uint64_t> epoch;
  for (const HostView& h : hosts) {
    if (!h.running || h.status.is_null() || str(h.status, "state") == "halted") continue;
    if (std::optional<uint64_t> e = epoch_of(h.status); e && (!epoch || *e > *epoch)) epoch = e;
  }
  const HostView* primary = nullptr;
  const HostView* backup = nullptr;
  if (epoch) {
    for (const HostView& h : hosts) {
      if (!h.running || h.status.is_null() || epoch_of(h.status) != epoch) continue;
      const std::string role = str(h.status, "role"), state = str(h.status, "state");
      if (role == "primary" &&
          (state == "waiting_for_backup" || state == "paired" || state == "solo")) {
        primary = &h;
      } else if (role == "backup" && (state == "joining" || state == "replaying")) {
        backup = &h;
      }
    }
  }
  uint64_t matched = 0;
  if (backup != nullptr) {
    const nlohmann::json& s = backup->status;
    if (s.contains("checks") && s["checks"].is_object() &&
        s["checks"].contains("state_hashes_matched") &&
        s["checks"]["state_hashes_matched"].is_number_unsigned()) {
      matched = s["checks"]["state_hashes_matched"].get<uint64_t>();
    }
  }
  nlohmann::json out;
  out["epoch"] = epoch ? nlohmann::json(*epoch) : nlohmann::json(nullptr);
  out["primary"] = primary ? nlohmann::json(str(primary->status, "host")) : nlohmann::json(nullptr);
  out["backup"] = backup ? nlohmann::json(str(backup->status, "host")) : nlohmann::json(nullptr);
  out["paired"] = primary != nullptr && backup != nullptr &&
                  str(primary->status, "state") == "paired" &&
                  str(backup->status, "state") == "replaying" && matched >= 1;
  out["history"] = history.is_array() ? history : nlohmann::json::array();
  // A join in progress, as the joining backup (or else the primary) reports it.
  out["transfer"] = nullptr;
  for (const HostView* h : {backup, primary}) {
    if (h == nullptr || !h->status.contains("transfer")) continue;
    const nlohmann::json& t = h->status["transfer"];
    if (t.is_object() && str(t, "phase") != "done" && str(t, "phase") != "failed") {
      out["transfer"] = t;
      break;
    }
  }
  return out;
}

}  // namespace ftvm::ft
