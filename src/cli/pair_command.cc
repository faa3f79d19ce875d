// `ftvm primary|backup|up|down|status|kill` (see pair_command.h and
// docs/ft-pair.md).
#include "cli/pair_command.h"

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "arbiter/client.h"

#include "arbiter/arbiter_store.h"
#include "auth/secret.h"
#include "cli/run_command.h"
#include "ft/node.h"
#include "ft/pair_view.h"
#include "ft/status.h"
#include "hostio/disk_copy.h"
#include "hostio/entropy.h"
#include "hostio/netns.h"
#include "vm/machine.h"

namespace ftvm::cli {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kChannelAddr = "10.78.0.1:7100";     // host a's end of the logging link
constexpr const char* kChannelAddrB = "10.78.0.2:7100";    // host b's
constexpr const char* kArbiterAddr = "10.79.0.1:7000";
constexpr const char* kEtcdAddr = "10.79.0.1:2379";
constexpr const char* kHosts[] = {"a", "b"};  // host a = NAME-pri, host b = NAME-bak

uint64_t parse_mib(const std::string& text) {
  size_t pos = 0;
  const unsigned long long n = std::stoull(text, &pos);
  const std::string unit = text.substr(pos);
  if (unit.empty() || unit == "M" || unit == "MiB" || unit == "m") return n;
  if (unit == "G" || unit == "GiB" || unit == "g") return n * 1024;
  throw std::invalid_argument("unit");
}

std::string self_exe() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

// Where a pair keeps things: `dir` its run directory (pids, sockets, logs,
// secret; pair_dir), `state` what must survive it (the arbiter's store;
// state_dir).
struct PairPaths {
  std::string name, dir, state;
};

PairPaths paths_of(const std::string& name) { return {name, pair_dir(name), state_dir(name)}; }

// The pair's history (ft/pair_view.h): beside the arbiter's store, kept as
// long as the store is.
std::string history_path(const PairPaths& p) { return p.state + "/history.jsonl"; }

// Each host's copy of the guest's data disk, kept with the pair's state.
std::string disk_path(const PairPaths& p, const char* host) {
  return fmt::format("{}/{}/data.img", p.state, host);
}

// Makes both hosts' disk copies ready to start a pair: equal, and as far as
// the pair ever got. Prints what it did.
Status prepare_disks(const PairPaths& p, bool fresh) {
  const std::string image = default_guest_dir() + "/data.img";
  std::error_code ec;
  for (const char* h : kHosts) {
    fs::create_directories(fmt::format("{}/{}", p.state, h), ec);
    if (ec) return make_error(fmt::format("cannot create {}/{}: {}", p.state, h, ec.message()));
    if (fresh && fs::exists(disk_path(p, h))) {
      fs::remove(disk_path(p, h), ec);
      if (ec) return make_error(fmt::format("cannot remove {}: {}", disk_path(p, h), ec.message()));
      fs::remove(ft::disk_mark_path(disk_path(p, h)), ec);
    }
  }
  if (fresh) {
    fmt::print(stderr, "ftvm up: --fresh: discarded the hosts' disk copies (the arbiter's grants "
                       "and the history are kept)\n");
  }
  const bool have_a = fs::exists(disk_path(p, "a")), have_b = fs::exists(disk_path(p, "b"));
  auto copy = [](const std::string& from, const std::string& to) -> Status {
    Result<hostio::DiskCopy> c = hostio::copy_disk_image(from, to);
    if (!c) return make_error(c.error());
    return {};
  };
  if (!have_a && !have_b) {
    if (access(image.c_str(), R_OK) != 0) {
      return make_error(fmt::format("no data disk in the guest image ({}): run scripts/setup.sh",
                                    image));
    }
    for (const char* h : kHosts) {
      fs::remove(ft::disk_mark_path(disk_path(p, h)), ec);  // a mark of a copy long gone
      if (Status s = copy(image, disk_path(p, h)); !s) return s;
    }
    fmt::print(stderr, "ftvm up: each host's copy of the data disk made from {}: {}, {}\n", image,
               disk_path(p, "a"), disk_path(p, "b"));
    return {};
  }
  // The most advanced copy is the one whose node last took the highest
  // epoch (its mark, ft::write_disk_mark): a backup's copy is a prefix of
  // its primary's run. Without marks, the history says who held it.
  std::string newest = have_a ? "a" : "b";
  std::string why = "the only copy";
  if (have_a && have_b) {
    const ft::CopyChoice c =
        ft::most_advanced_copy(ft::read_disk_mark_epoch(disk_path(p, "a")),
                               ft::read_disk_mark_epoch(disk_path(p, "b")),
                               ft::read_history(history_path(p)));
    newest = c.host;
    why = c.why;
  }
  const std::string other = newest == "a" ? "b" : "a";
  if (Status s = copy(disk_path(p, newest.c_str()), disk_path(p, other.c_str())); !s) return s;
  // The copy is now as advanced as its source: so is its mark.
  std::error_code mark_ec;
  const std::string from_mark = ft::disk_mark_path(disk_path(p, newest.c_str()));
  if (fs::exists(from_mark)) {
    fs::copy_file(from_mark, ft::disk_mark_path(disk_path(p, other.c_str())),
                  fs::copy_options::overwrite_existing, mark_ec);
  } else {
    fs::remove(ft::disk_mark_path(disk_path(p, other.c_str())), mark_ec);
  }
  if (mark_ec) {
    return make_error(fmt::format("cannot copy the mark of host {}'s disk copy: {}", newest,
                                  mark_ec.message()));
  }
  fmt::print(stderr,
             "ftvm up: keeping the data disk: host {}'s copy is the most advanced ({}); copied "
             "to host {}\n",
             newest, why, other);
  return {};
}

// The processes `ftvm up` starts, each named by its pid file.
enum class PairProcess { kNodeA, kNodeB, kArbiter, kSupervisor };

const char* host_of(PairProcess p) { return p == PairProcess::kNodeA ? "a" : "b"; }

// The arguments `pid` runs with; empty when it is gone or inside an exec.
std::vector<std::string> cmdline_of(pid_t pid) {
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string raw((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t end = raw.find('\0', pos);
    argv.push_back(raw.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    pos = end == std::string::npos ? raw.size() : end + 1;
  }
  return argv;
}

bool has_option(const std::vector<std::string>& argv, const std::string& flag,
                const std::string& value) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && argv[i + 1] == value) return true;
  }
  return false;
}

bool has_word(const std::vector<std::string>& argv, const std::string& word) {
  return std::find(argv.begin(), argv.end(), word) != argv.end();
}

// Whether `pid` is still the process `ftvm up` started as `what` for the
// pair `p`: running (not a zombie) and started with that process's own
// arguments -- a node's `primary` or `backup` with `--control DIR/H.sock`,
// the embedded arbiter's `arbiter` with `--secret DIR/secret`, or etcd's
// `--data-dir STATE/etcd`. A reused pid, another pair's process, or one that
// merely names a file of the pair (`tail DIR/a.log`) is never taken for ours.
bool alive(pid_t pid, const PairPaths& p, PairProcess what) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close_paren = line.rfind(')');
  if (close_paren != std::string::npos && close_paren + 2 < line.size() &&
      line[close_paren + 2] == 'Z') {
    return false;
  }
  const std::vector<std::string> argv = cmdline_of(pid);
  if (what == PairProcess::kArbiter) {
    return (has_word(argv, "arbiter") && has_option(argv, "--secret", p.dir + "/secret")) ||
           has_option(argv, "--data-dir", p.state + "/etcd");
  }
  if (what == PairProcess::kSupervisor) {
    return has_word(argv, "supervise") && has_option(argv, "--run-dir", p.dir);
  }
  return (has_word(argv, "primary") || has_word(argv, "backup")) &&
         has_option(argv, "--control", fmt::format("{}/{}.sock", p.dir, host_of(what)));
}

pid_t read_pid(const std::string& path) {
  std::ifstream f(path);
  pid_t pid = 0;
  f >> pid;
  return pid;
}

// Starts `argv` in network namespace `ns`, in its own session, with output
// to `log` (stderr) and `out` (stdout); returns its pid.
Result<pid_t> spawn(std::vector<std::string> full, const std::string& out, const std::string& log);

Result<pid_t> spawn_in(const std::string& ns, std::vector<std::string> argv, const std::string& out,
                       const std::string& log) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return spawn(std::move(full), out, log);
}

// Starts `full` (found on PATH) in its own session, as spawn_in does.
Result<pid_t> spawn(std::vector<std::string> full, const std::string& out, const std::string& log) {
  // Everything is made before fork(): the child may only make
  // async-signal-safe calls until exec (another thread may hold the
  // allocator's lock at the moment of the fork).
  std::vector<char*> args;
  for (std::string& a : full) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return make_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    setsid();
    const int null = open("/dev/null", O_RDONLY);
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int e = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null < 0 || o < 0 || e < 0) _exit(127);
    dup2(null, STDIN_FILENO);
    dup2(o, STDOUT_FILENO);
    dup2(e, STDERR_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

Status run_script(const std::vector<std::string>& args) {
  const std::string script = hostio::project_script("ftnet.sh");
  std::vector<std::string> full = {"bash", script};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;  // made before fork(), as in spawn_in
  for (std::string& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return make_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execv("/bin/bash", argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error(fmt::format("{} {} failed (exit {}); see its message above", script, args[0],
                                  WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return {};
}

// Whether Redis in the guest answers PING, asked from the client namespace.
bool redis_answers(const std::string& name) {
  bool ok = false;
  std::thread t([&] {
    if (!hostio::enter_netns(name + "-client")) return;  // this thread only
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(6379);
    inet_pton(AF_INET, hostio::kLanGuestAddress, &sa.sin_addr);
    connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    pollfd p{fd, POLLOUT, 0};
    int err = 1;
    socklen_t len = sizeof err;
    if (poll(&p, 1, 1000) == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0 && send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
      p = {fd, POLLIN, 0};
      char buf[16] = {};
      if (poll(&p, 1, 2000) == 1 && recv(fd, buf, sizeof buf - 1, 0) > 0) {
        ok = std::strncmp(buf, "+PONG", 5) == 0;
      }
    }
    close(fd);
  });
  t.join();
  return ok;
}

std::string control_path(const std::string& dir, const char* host) {
  return fmt::format("{}/{}.sock", dir, host);
}

struct NodeView {
  std::string host;
  pid_t pid = 0;          // from the pid file
  bool running = false;   // alive(): that pid runs this host's node
  nlohmann::json status;  // null when it does not answer
  // The status came from that very process: its own `pid` is the pid file's.
  bool status_is_its_own = false;
};

std::vector<NodeView> view_nodes(const PairPaths& p) {
  std::vector<NodeView> out;
  for (PairProcess what : {PairProcess::kNodeA, PairProcess::kNodeB}) {
    NodeView v;
    v.host = host_of(what);
    v.pid = read_pid(fmt::format("{}/{}.pid", p.dir, v.host));
    v.running = alive(v.pid, p, what);
    if (v.running) {
      Result<nlohmann::json> s =
          ft::query_status(control_path(p.dir, v.host.c_str()), std::chrono::seconds(2));
      if (s && s->is_object()) {
        v.status = *s;
        v.status_is_its_own = s->contains("pid") && (*s)["pid"].is_number_integer() &&
                              (*s)["pid"].get<int64_t>() == v.pid;
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

double num(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  const nlohmann::json* p = &j;
  if (!p->contains(a)) return 0;
  p = &(*p)[a];
  if (b != nullptr) {
    if (!p->contains(b)) return 0;
    p = &(*p)[b];
  }
  return p->is_number() ? p->get<double>() : 0;
}

// Runs `ask` with a client of the arbiter at `url` (authenticated with the
// secret in `secret_file`) on a thread inside the network namespace `ns`,
// where the arbiter network is reachable; returns what `ask` returned.
template <typename T, typename Ask>
Result<T> ask_arbiter_in(const std::string& ns, const std::string& url,
                         const std::string& secret_file, Ask&& ask) {
  Result<auth::Secret> secret = auth::Secret::load(secret_file);
  if (!secret) return make_error(secret.error());
  Result<std::unique_ptr<arbiter::Client>> client =
      arbiter::connect_arbiter(url, std::make_shared<const auth::Secret>(std::move(*secret)));
  if (!client) return make_error(client.error());
  Result<T> out = make_error("the arbiter was not asked");
  std::thread t([&] {
    if (Status s = hostio::enter_netns(ns); !s) {  // this thread only
      out = make_error(s.error());
      return;
    }
    out = ask(**client);
  });
  t.join();
  return out;
}

// The vm's latest grant, asked from the namespace of host a (the arbiter
// needs a moment to start: retried until it answers, for up to 30 s, unless
// its process `arb` exits first -- then the error quotes its log).
Result<arbiter::LatestGrant> latest_grant(const std::string& name, const std::string& url,
                                          const std::string& secret_file, pid_t arb,
                                          const std::string& dir) {
  return ask_arbiter_in<arbiter::LatestGrant>(
      name + "-pri", url, secret_file,
      [&](arbiter::Client& client) -> Result<arbiter::LatestGrant> {
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        for (;;) {
          Result<arbiter::LatestGrant> g = client.latest(name, std::chrono::seconds(1));
          if (g) return g;
          int st = 0;
          if (waitpid(arb, &st, WNOHANG) == arb) {
            std::ifstream log(dir + "/arbiter.log");
            std::string text((std::istreambuf_iterator<char>(log)),
                             std::istreambuf_iterator<char>());
            return make_error(
                fmt::format("the arbiter exited; its log {}/arbiter.log:\n{}", dir, text));
          }
          if (Clock::now() >= deadline) {
            return make_error(fmt::format("the arbiter at {} did not answer within 30 s ({}); see "
                                          "{}/arbiter.log",
                                          url, g.error(), dir));
          }
          pollfd none{-1, 0, 0};
          poll(&none, 0, 100);  // retry interval of a start-up wait with a deadline
        }
      });
}

// One question to the arbiter at `url` from the network namespace `ns`,
// with a short deadline: is it there?
Status arbiter_answers(const std::string& name, const std::string& ns, const std::string& url,
                       const std::string& secret_file) {
  Result<arbiter::LatestGrant> g = ask_arbiter_in<arbiter::LatestGrant>(
      ns, url, secret_file,
      [&](arbiter::Client& client) { return client.latest(name, std::chrono::seconds(2)); });
  return g ? Status{} : make_error(g.error());
}

}  // namespace

void add_node_options(CLI::App* app, NodeCli& o, bool primary) {
  app->add_option("--vm", o.vm, "The pair's id at the arbiter")->required();
  app->add_option("--arbiter", o.arbiter,
                  "Arbiter: ADDR:PORT (ftvm arbiter) or etcd://HOST:PORT")->required();
  app->add_option("--secret", o.secret,
                  "File with the pair's shared secret (hex or raw, at least 16 bytes)")->required();
  app->add_option("--host-id", o.host_id, "This node's name at the arbiter (default: host:pid)");
  if (primary) {
    app->add_option("--listen", o.listen, "ADDR:PORT of the logging channel")->required();
    app->add_option("--epoch", o.epoch, "The epoch this primary claims at start")
        ->capture_default_str();
    app->add_option("--join-timeout", o.join_timeout_s, "Seconds to wait for the backup")
        ->capture_default_str();
    app->add_option("--kernel", o.kernel, "Linux Image (default: the built guest image)");
    app->add_option("--initrd", o.initrd, "initramfs (default: the built guest image's)");
    app->add_option("--append", o.append, "Words to append to the kernel command line");
    app->add_option("--memory", o.memory, "Guest RAM in MiB (or 512M, 1G)")->capture_default_str();
    app->add_option("--disk", o.disk,
                    "This host's copy of the guest's disk (vda), written as the guest writes; "
                    "the backup's copy must be equal to it when the backup joins");
    app->add_flag("--disk-read-only", o.disk_read_only,
                  "Attach --disk read-only on both hosts (nothing is ever written)");
    app->add_option("--entropy", o.entropy,
                    "The guest's randomness (device-tree rng-seed and virtio-rng): host "
                    "(getrandom, logged to the backup), none, or seed:N (reproducible)")
        ->capture_default_str();
    app->add_option("--mac", o.mac, "The guest NIC's MAC (default 52:54:00:77:00:0f)");
    app->add_option("--hash-interval", o.hash_interval,
                    "Instructions between state hashes the backup checks (0: none)")
        ->capture_default_str();
    app->add_option("--max-lag-ms", o.max_lag_ms,
                    "Guest milliseconds the backup may lag before the primary slows down")
        ->capture_default_str();
    app->add_option("--max-lag-bytes", o.max_lag_bytes,
                    "Log bytes the backup may lag before the primary slows down")
        ->capture_default_str();
  } else {
    app->add_option("--primary", o.primary,
                    "The primary's logging channel ADDR:PORT; a primary already running is "
                    "joined by state transfer")
        ->required();
    app->add_option("--listen", o.listen,
                    "ADDR:PORT of this host's logging channel, served once this node is primary "
                    "(after a takeover) so a new backup can join it");
    app->add_option("--join-timeout", o.join_timeout_s, "Seconds to wait for the primary")
        ->capture_default_str();
    app->add_option("--kernel", o.kernel, "This host's copy of the Linux Image");
    app->add_option("--initrd", o.initrd, "This host's copy of the initramfs");
    app->add_option("--disk", o.disk,
                    "This host's copy of the disk image (writable unless the primary made it "
                    "read-only); equal to the primary's when joining");
  }
  app->add_option("--tap", o.tap, "TAP device of the guest NIC on this host (the LAN)");
  app->add_option("--guest-ip", o.guest_ip,
                  "Address announced after taking over (default: ftvm.net= of the command line)");
  app->add_option("--heartbeat-ms", o.heartbeat_ms, "Heartbeat interval")->capture_default_str();
  app->add_option("--timeout-ms", o.timeout_ms, "Silence on the channel that counts as failure")
      ->capture_default_str();
  app->add_option("--transfer-mbps", o.transfer_mbps,
                  "When a new backup joins this node as primary: copy its state at most this "
                  "many MB/s (0: as fast as the channel goes)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--control", o.control, "Unix socket serving this node's status");
  app->add_option("--history", o.history,
                  "Append a JSON line to FILE each time this node takes an epoch (start, "
                  "failover, solo); `ftvm status` shows them");
  app->footer(
      "Exit status: the guest's own when it powers off; 2 unusable options, images or peer;\n"
      "3 the backup cannot follow the primary (its replay diverged, or its disk failed);\n"
      "4 lost the arbiter's test-and-set (halted for good); 125 the machine failed.");
}

int node_command(const NodeCli& c, bool primary) {
  ft::NodeOptions o;
  auto bad = [](const std::string& m) {
    fmt::print(stderr, "ftvm: {}\n", m);
    return kExitBadInput;
  };
  if (!arbiter::valid_name(c.vm)) {
    return bad(fmt::format("--vm '{}': 1 to {} printable characters without spaces", c.vm,
                           arbiter::kMaxNameLength));
  }
  if (!c.host_id.empty() && !arbiter::valid_host_id(c.host_id)) {
    return bad("--host-id: " + arbiter::bad_host_id(c.host_id));
  }
  Result<auth::Secret> secret = auth::Secret::load(c.secret);
  if (!secret) return bad(secret.error());
  o.secret = std::make_shared<const auth::Secret>(std::move(*secret));
  uint64_t mib = 0;
  try {
    mib = parse_mib(c.memory);
  } catch (const std::exception&) {
    return bad(fmt::format("bad --memory '{}'", c.memory));
  }
  if (mib < 16 || mib > 16384) return bad(fmt::format("--memory {} MiB is out of range", mib));
  Result<hostio::EntropyChoice> entropy = hostio::parse_entropy_choice(c.entropy);
  if (!entropy) return bad(entropy.error());
  Result<vm::Engine> engine = engine_from_option(c.engine);
  if (!engine) return bad(engine.error());
  o.engine = *engine;
  if (c.heartbeat_ms == 0 || c.timeout_ms < 2 * c.heartbeat_ms) {
    return bad("--timeout-ms must be at least twice --heartbeat-ms");
  }
  const std::string dir = default_guest_dir();
  o.spec.kernel_path = c.kernel.empty() ? dir + "/Image" : c.kernel;
  o.spec.initrd_path = c.initrd;
  if (o.spec.initrd_path.empty() && c.kernel.empty()) o.spec.initrd_path = dir + "/initramfs.cpio.gz";
  if (c.kernel.empty() && access(o.spec.kernel_path.c_str(), R_OK) != 0) {
    return bad(fmt::format("no guest image at {} (build it with guest/build.sh, or pass --kernel)",
                           dir));
  }
  o.spec.disk_path = c.disk;
  // The primary decides the mode (the header carries it to the backup).
  o.spec.disk_writable = primary && !c.disk.empty() && !c.disk_read_only;
  o.spec.ram_size = mib << 20;
  o.spec.cmdline = "console=ttyS0" + (c.append.empty() ? std::string() : " " + c.append);
  if (primary) {
    // The primary draws the rng-seed; the header carries it to the backup,
    // which builds its machine from the header.
    ft::set_live_entropy(o.spec, *entropy);
    o.entropy = *entropy;
  }
  if (!c.tap.empty()) {
    std::optional<vm::MacAddress> mac = vm::kDefaultGuestMac;
    if (!c.mac.empty()) mac = vm::parse_mac(c.mac);
    if (!mac) return bad(fmt::format("--mac {}: not a MAC address", c.mac));
    o.spec.net_mac = vm::format_mac(*mac);
  }
  o.tap = c.tap;
  o.guest_ip = c.guest_ip;
  o.vm = c.vm;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  o.host_id = c.host_id.empty() ? fmt::format("{}:{}", host, getpid()) : c.host_id;
  o.arbiter = c.arbiter;
  o.listen = c.listen;
  o.primary = c.primary;
  o.epoch = c.epoch;
  o.heartbeat = std::chrono::milliseconds(c.heartbeat_ms);
  o.timeout = std::chrono::milliseconds(c.timeout_ms);
  o.join_timeout = std::chrono::milliseconds(c.join_timeout_s * 1000);
  o.max_lag_ms = c.max_lag_ms;
  o.transfer_mbps = c.transfer_mbps;
  o.max_lag_bytes = c.max_lag_bytes;
  o.hash_interval = c.hash_interval;
  o.control = c.control;
  o.history = c.history;
  signal(SIGPIPE, SIG_IGN);
  return primary ? ft::run_primary(o) : ft::run_backup(o);
}

std::string pair_dir(const std::string& name) {
  const char* base = std::getenv("FTVM_RUN_DIR");
  const fs::path dir = fs::path(base != nullptr && *base ? base : "/run/ftvm") / name;
  return dir.lexically_normal().string();
}

std::string state_dir(const std::string& name) {
  const char* base = std::getenv("FTVM_STATE_DIR");
  const fs::path dir = fs::path(base != nullptr && *base ? base : "/var/lib/ftvm") / name;
  return dir.lexically_normal().string();
}

int up_command(const UpOptions& o) {
  auto bad = [](const std::string& m) {
    fmt::print(stderr, "ftvm up: {}\n", m);
    return kExitBadInput;
  };
  if (o.name.empty() || o.name.size() > 8 ||
      o.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos) {
    return bad("--name: 1 to 8 lower-case letters or digits");
  }
  if (o.arbiter != "ftvm" && o.arbiter != "etcd") return bad("--arbiter: ftvm or etcd");
  Result<hostio::EntropyChoice> entropy = hostio::parse_entropy_choice(o.entropy);
  if (!entropy) return bad(entropy.error());
  for (const std::string& e : {o.engine, o.engine_b}) {
    if (Result<vm::Engine> engine = engine_from_option(e); !engine) return bad(engine.error());
  }
  const PairPaths paths = paths_of(o.name);
  const std::string& dir = paths.dir;
  for (auto [file, what] : {std::pair{"a", PairProcess::kNodeA}, std::pair{"b", PairProcess::kNodeB},
                            std::pair{"arbiter", PairProcess::kArbiter},
                            std::pair{"supervisor", PairProcess::kSupervisor}}) {
    const pid_t pid = read_pid(fmt::format("{}/{}.pid", dir, file));
    if (alive(pid, paths, what)) {
      return bad(fmt::format("pair '{}' is already up (pid {}); `ftvm status --name {}` shows it, "
                             "`ftvm down --name {}` stops it",
                             o.name, pid, o.name, o.name));
    }
  }
  const std::string kernel = default_guest_dir() + "/Image";
  if (access(kernel.c_str(), R_OK) != 0) {
    return bad(fmt::format("no guest image at {}: run scripts/setup.sh first", default_guest_dir()));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return bad(fmt::format("cannot create {}: {}", dir, ec.message()));
  fmt::print(stderr, "ftvm up: making the namespaces of pair '{}' (scripts/ftnet.sh)\n", o.name);
  if (Status s = run_script({"up", o.name}); !s) return bad(s.error());
  const std::string secret = dir + "/secret";
  if (Status s = auth::generate_secret_file(secret); !s) return bad(s.error());

  const std::string exe = self_exe();
  std::string arbiter_url;
  std::vector<std::string> arb_argv;
  // The arbiter's store outlives every run of the pair (and reboots): it is
  // never deleted here, only made the first time, explicitly.
  const std::string& state = paths.state;
  if (o.arbiter == "ftvm") {
    arbiter_url = kArbiterAddr;
    arb_argv = {exe, "arbiter", "--listen", kArbiterAddr, "--data", state, "--secret", secret};
    if (!fs::exists(state + "/grants.log")) {
      fmt::print(stderr,
                 "ftvm up: pair '{}' has no arbiter store yet: making a new one in {} "
                 "(ftvm arbiter --init)\n",
                 o.name, state);
      arb_argv.push_back("--init");
    } else {
      fmt::print(stderr, "ftvm up: the arbiter keeps using its store in {}\n", state);
    }
  } else {
    fs::create_directories(state, ec);
    if (ec) return bad(fmt::format("cannot create {}: {}", state, ec.message()));
    fmt::print(stderr, "ftvm up: etcd keeps its data in {}/etcd\n", state);
    arbiter_url = std::string("etcd://") + kEtcdAddr;
    arb_argv = {"etcd", "--name", "ftvm-" + o.name, "--data-dir", state + "/etcd",
                "--listen-client-urls", std::string("http://") + kEtcdAddr,
                "--advertise-client-urls", std::string("http://") + kEtcdAddr,
                "--listen-peer-urls", "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                "--initial-cluster", "ftvm-" + o.name + "=http://127.0.0.1:2380"};
  }
  Result<pid_t> arb = spawn_in(o.name + "-arb", arb_argv, dir + "/arbiter.log", dir + "/arbiter.log");
  if (!arb) return bad(arb.error());
  std::ofstream(dir + "/arbiter.pid") << *arb << "\n";

  // The pair starts at the vm's next epoch: one above the latest the
  // arbiter ever granted for it (asked from the primary's host).
  Result<arbiter::LatestGrant> latest = latest_grant(o.name, arbiter_url, secret, *arb, dir);
  if (!latest) {
    fmt::print(stderr, "ftvm up: {}\nftvm up: `ftvm down --name {}` cleans up\n", latest.error(),
               o.name);
    return kExitMachineError;
  }
  const uint64_t epoch = latest->epoch + 1;
  if (latest->epoch == 0) {
    fmt::print(stderr, "ftvm up: vm '{}' was never granted an epoch: starting at epoch 1\n",
               o.name);
  } else {
    fmt::print(stderr, "ftvm up: vm '{}' last held epoch {} (by {}): starting at epoch {}\n",
               o.name, latest->epoch, latest->holder, epoch);
  }

  if (Status s = prepare_disks(paths, o.fresh); !s) {
    fmt::print(stderr, "ftvm up: {}\nftvm up: `ftvm down --name {}` cleans up\n", s.error(), o.name);
    return kExitMachineError;
  }

  std::string append = fmt::format("ftvm.net={} ftvm.service=redis", hostio::kLanGuestCidr);
  if (!o.append.empty()) append += " " + o.append;
  auto common = [&](const char* host) {
    std::vector<std::string> v{
        "--vm", o.name, "--arbiter", arbiter_url, "--secret", secret, "--host-id",
        std::string("host-") + host, "--tap", "tap0", "--control", control_path(dir, host),
        "--heartbeat-ms", std::to_string(o.heartbeat_ms), "--timeout-ms",
        std::to_string(o.timeout_ms), "--history", history_path(paths), "--transfer-mbps",
        fmt::format("{}", o.transfer_mbps)};
    const std::string& engine =
        std::string(host) == "b" && !o.engine_b.empty() ? o.engine_b : o.engine;
    if (!engine.empty()) {
      v.push_back("--engine");
      v.push_back(engine);
    }
    return v;
  };
  std::vector<std::string> pri = {exe, "primary", "--listen", kChannelAddr, "--epoch",
                                  std::to_string(epoch), "--append", append,
                                  "--memory", o.memory, "--entropy", o.entropy, "--hash-interval",
                                  std::to_string(o.hash_interval), "--max-lag-ms",
                                  std::to_string(o.max_lag_ms), "--disk", disk_path(paths, "a")};
  for (std::string& a : common("a")) pri.push_back(a);
  // A backup on host h joins the other host's primary, and serves h's own
  // end of the logging link once it has taken over; the supervisor starts
  // the same command again on a host whose node is gone (re-protection).
  auto backup_argv = [&](const char* host) {
    const bool on_a = std::string(host) == "a";
    std::vector<std::string> v = {exe, "backup", "--primary", on_a ? kChannelAddrB : kChannelAddr,
                                  "--listen", on_a ? kChannelAddr : kChannelAddrB, "--disk",
                                  disk_path(paths, host)};
    for (std::string& a : common(host)) v.push_back(a);
    return v;
  };
  const std::vector<std::string> bak = backup_argv("b");
  for (const char* h : {"a", "b"}) {
    std::ofstream(fmt::format("{}/{}.backup.json", dir, h)) << nlohmann::json(backup_argv(h)).dump()
                                                           << "\n";
  }
  Result<pid_t> a = spawn_in(o.name + "-pri", pri, dir + "/a.console", dir + "/a.log");
  if (!a) return bad(a.error());
  std::ofstream(dir + "/a.pid") << *a << "\n";
  Result<pid_t> b = spawn_in(o.name + "-bak", bak, dir + "/b.console", dir + "/b.log");
  if (!b) return bad(b.error());
  std::ofstream(dir + "/b.pid") << *b << "\n";
  fmt::print(stderr,
             "ftvm up: arbiter pid {} ({}), primary pid {} on host a, backup pid {} on host b;\n"
             "ftvm up: logs in {}; waiting for Redis in the guest to answer\n",
             *arb, arbiter_url, *a, *b, dir);

  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(o.ready_timeout_s);
  std::string last_state;
  for (;;) {
    for (const char* h : {"a", "b"}) {
      const pid_t pid = read_pid(fmt::format("{}/{}.pid", dir, h));
      int st = 0;
      if (waitpid(pid, &st, WNOHANG) == pid) {  // our child: its exit is certain
        fmt::print(stderr, "ftvm up: host {}'s node exited; its log {}/{}.log ends:\n", h, dir, h);
        std::ifstream log(fmt::format("{}/{}.log", dir, h));
        std::string line;
        while (std::getline(log, line)) fmt::print(stderr, "  {}\n", line);
        fmt::print(stderr, "ftvm up: `ftvm down --name {}` cleans up\n", o.name);
        return kExitMachineError;
      }
    }
    Result<nlohmann::json> s = ft::query_status(control_path(dir, "a"), std::chrono::seconds(2));
    const std::string state = s && s->contains("state") ? (*s)["state"].get<std::string>() : "";
    if (state != last_state && !state.empty()) {
      fmt::print(stderr, "ftvm up: primary: {} ({:.1f} s)\n", state,
                 std::chrono::duration<double>(Clock::now() - start).count());
      last_state = state;
    }
    if (state == "paired" && redis_answers(o.name)) break;
    if (Clock::now() >= deadline) {
      fmt::print(stderr, "ftvm up: Redis did not answer within {} s; see {}/a.log and a.console\n",
                 o.ready_timeout_s, dir);
      return kExitMachineError;
    }
    pollfd none{-1, 0, 0};
    poll(&none, 0, 200);  // polling interval of a readiness check with a deadline
  }
  if (o.no_reprotect) {
    fmt::print(stderr, "ftvm up: --no-reprotect: after a failure the survivor runs alone\n");
  } else {
    Result<pid_t> sup = spawn({exe, "supervise", "--name", o.name, "--run-dir", dir},
                              dir + "/supervisor.log", dir + "/supervisor.log");
    if (!sup) return bad(sup.error());
    std::ofstream(dir + "/supervisor.pid") << *sup << "\n";
    fmt::print(stderr,
               "ftvm up: supervisor pid {}: after a failure it starts a new backup on the failed "
               "host, which joins the survivor (log {}/supervisor.log)\n",
               *sup, dir);
  }
  fmt::print(stderr,
             "ftvm up: pair '{}' is up in {:.1f} s: Redis answers at {} from the client namespace.\n"
             "  ftvm status --name {}            roles, epoch, lag, log bandwidth, held outputs\n"
             "  scripts/ftnet.sh exec {} client redis-benchmark -h {} -q -n 20000\n"
             "  ftvm kill primary --name {}      SIGKILL the primary; the backup takes over\n"
             "  ftvm down --name {}              stop everything and remove the namespaces\n",
             o.name, std::chrono::duration<double>(Clock::now() - start).count(),
             hostio::kLanGuestAddress, o.name, o.name, hostio::kLanGuestAddress, o.name, o.name);
  return 0;
}

int down_command(const std::string& name) {
  const PairPaths paths = paths_of(name);
  const std::string& dir = paths.dir;
  std::vector<std::pair<pid_t, PairProcess>> pids;
  // The supervisor first, so it starts nothing while the rest stop.
  const pid_t sup = read_pid(dir + "/supervisor.pid");
  if (alive(sup, paths, PairProcess::kSupervisor)) {
    kill(sup, SIGTERM);
    const auto sup_deadline = Clock::now() + std::chrono::seconds(5);
    while (alive(sup, paths, PairProcess::kSupervisor) && Clock::now() < sup_deadline) {
      waitpid(sup, nullptr, WNOHANG);
      pollfd none{-1, 0, 0};
      poll(&none, 0, 20);
    }
    if (alive(sup, paths, PairProcess::kSupervisor)) kill(sup, SIGKILL);
    pids.push_back({sup, PairProcess::kSupervisor});
  }
  for (auto [file, what] : {std::pair{"a", PairProcess::kNodeA}, std::pair{"b", PairProcess::kNodeB},
                            std::pair{"arbiter", PairProcess::kArbiter}}) {
    const pid_t pid = read_pid(fmt::format("{}/{}.pid", dir, file));
    if (alive(pid, paths, what)) {
      kill(pid, SIGTERM);
      kill(pid, SIGCONT);  // a stopped process acts on SIGTERM only once it runs
      pids.push_back({pid, what});
    }
  }
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (auto [pid, what] : pids) {
    while (alive(pid, paths, what) && Clock::now() < deadline) {
      waitpid(pid, nullptr, WNOHANG);
      pollfd none{-1, 0, 0};
      poll(&none, 0, 20);
    }
    if (alive(pid, paths, what)) kill(pid, SIGKILL);
  }
  if (access(("/run/netns/" + name + "-lan").c_str(), F_OK) == 0 ||
      access(("/run/netns/" + name + "-pri").c_str(), F_OK) == 0) {
    if (Status s = run_script({"down", name}); !s) {
      fmt::print(stderr, "ftvm down: {}\n", s.error());
      return kExitMachineError;
    }
  }
  fmt::print(stderr,
             "ftvm down: pair '{}' stopped ({} processes); logs kept in {}, the arbiter's store "
             "in {}\n",
             name, pids.size(), dir, paths.state);
  return 0;
}

int migrate_command(const std::string& name, int timeout_s) {
  const PairPaths paths = paths_of(name);
  if (!fs::exists(paths.dir)) {
    fmt::print(stderr, "ftvm migrate: no pair '{}' ({} does not exist)\n", name, paths.dir);
    return 1;
  }
  auto summary_now = [&] {
    std::vector<ft::HostView> views;
    for (const NodeView& v : view_nodes(paths)) views.push_back({v.host, v.running, v.status});
    return ft::pair_summary(views, ft::read_history(history_path(paths)));
  };
  const nlohmann::json before = summary_now();
  if (!before["paired"].get<bool>()) {
    fmt::print(stderr,
               "ftvm migrate: pair '{}' is not protected (no backup in step with the primary), so "
               "there is nobody to hand over to; `ftvm status --name {}` shows why\n",
               name, name);
    return 1;
  }
  const std::string from = before["primary"].get<std::string>();
  const std::string to = before["backup"].get<std::string>();
  const uint64_t epoch = before["epoch"].get<uint64_t>();
  // The primary by its own status and pid, as `ftvm kill` finds it.
  const NodeView* primary = nullptr;
  const std::vector<NodeView> nodes = view_nodes(paths);
  for (const NodeView& v : nodes) {
    if (v.running && v.status_is_its_own && v.status.value("host", "") == from &&
        v.status.value("state", "") == "paired") {
      primary = &v;
    }
  }
  if (primary == nullptr) {
    fmt::print(stderr, "ftvm migrate: the primary ({}) did not answer for its own pid; not sending "
                       "anything\n", from);
    return 1;
  }
  // The backup takes the next epoch at the arbiter: without one, a handover
  // would stop the guest until the arbiter came back.
  for (const NodeView& v : nodes) {
    if (!v.running || v.status.value("host", "") != to) continue;
    const std::string url = v.status.value("arbiter", "");
    const std::string ns = name + (v.host == "a" ? "-pri" : "-bak");
    if (Status s = arbiter_answers(name, ns, url, paths.dir + "/secret"); !s) {
      fmt::print(stderr,
                 "ftvm migrate: the arbiter {} does not answer from {}'s host ({}); a handover "
                 "now would stop the guest until it does. Nothing was changed; try again once "
                 "`ftvm status --name {}` shows the arbiter running\n",
                 url, to, s.error(), name);
      return 1;
    }
  }
  const auto start = Clock::now();
  if (kill(primary->pid, SIGUSR1) != 0) {
    fmt::print(stderr, "ftvm migrate: cannot signal pid {}: {}\n", primary->pid,
               std::strerror(errno));
    return 1;
  }
  fmt::print(stderr, "ftvm migrate: asked {} (pid {}, epoch {}) to hand over to {}\n", from,
             primary->pid, epoch, to);
  const pid_t sup = read_pid(paths.dir + "/supervisor.pid");
  const bool reprotect = alive(sup, paths, PairProcess::kSupervisor);
  const auto deadline = start + std::chrono::seconds(timeout_s);
  bool took_over = false;
  for (;;) {
    const nlohmann::json s = summary_now();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!took_over && s["primary"] == to && s["epoch"].is_number_unsigned() &&
        s["epoch"].get<uint64_t>() > epoch) {
      took_over = true;
      fmt::print(stderr, "ftvm migrate: {} is primary at epoch {} ({:.0f} ms after the request)\n",
                 to, s["epoch"].get<uint64_t>(), ms);
      if (!reprotect) {
        fmt::print(stderr, "ftvm migrate: no supervisor (--no-reprotect): {} runs alone; start "
                           "`ftvm backup --primary ADDR` on the other host to protect it\n", to);
        return 0;
      }
    }
    if (took_over && s["paired"].get<bool>()) {
      fmt::print(stderr, "ftvm migrate: done: {} is primary, {} its new backup; the pair is "
                         "protected again ({:.0f} ms in all)\n", to, s["backup"].get<std::string>(), ms);
      return 0;
    }
    if (Clock::now() >= deadline) {
      fmt::print(stderr, "ftvm migrate: {} after {} s; `ftvm status --name {}` shows where the pair "
                         "is\n",
                 took_over ? "the pair was not protected again" : "the backup did not take over",
                 timeout_s, name);
      return 1;
    }
    pollfd none{-1, 0, 0};
    poll(&none, 0, 100);  // polling interval under the deadline
  }
}

int supervise_command(const std::string& name, const std::string& run_dir) {
  const PairPaths paths = paths_of(name);
  if (fs::path(run_dir).lexically_normal() != fs::path(paths.dir)) {
    fmt::print(stderr, "ftvm supervise: --run-dir {} is not pair '{}''s run directory {}\n", run_dir,
               name, paths.dir);
    return kExitBadInput;
  }
  const std::string& dir = paths.dir;
  auto say = [](const std::string& line) {
    const auto now = std::chrono::system_clock::now();
    fmt::print(stderr, "{:%H:%M:%S} ftvm supervise: {}\n",
               std::chrono::floor<std::chrono::seconds>(now), line);
  };
  say(fmt::format("watching pair '{}' (pid {})", name, getpid()));
  struct Host {
    const char* key;
    PairProcess what;
    const char* ns_role;
    Clock::time_point next_try{};
    std::chrono::seconds backoff{1};
    pid_t started = 0;  // the backup this supervisor started last, if any
    Clock::time_point started_at{};
    bool joined = false;  // ... and it was seen replaying (its join worked)
  };
  Host hosts[2] = {{"a", PairProcess::kNodeA, "pri"}, {"b", PairProcess::kNodeB, "bak"}};
  for (;;) {
    if (!fs::exists(dir)) {
      say("the run directory is gone; stopping");
      return 0;
    }
    // Reap the backups this process started.
    for (Host& h : hosts) {
      int st = 0;
      if (h.started > 0 && waitpid(h.started, &st, WNOHANG) == h.started) {
        const double lived = std::chrono::duration<double>(Clock::now() - h.started_at).count();
        say(fmt::format("the backup on host {} (pid {}) exited with {} after {:.1f} s{}; see {}/{}.log",
                        h.key, h.started, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                        lived, h.joined ? "" : " without joining", dir, h.key));
        h.started = 0;
        // One whose join failed (soon) is retried later and later; one that
        // joined and served as backup is replaced at once.
        h.backoff = !h.joined && lived < 30 ? std::min(h.backoff * 2, std::chrono::seconds(30))
                                            : std::chrono::seconds(1);
        h.next_try = h.joined ? Clock::now() : Clock::now() + h.backoff;
        h.joined = false;
        continue;
      }
      if (h.started > 0 && !h.joined) {
        Result<nlohmann::json> st = ft::query_status(control_path(dir, h.key), std::chrono::seconds(1));
        h.joined = st && st->value("state", "") == "replaying";
      }
    }
    bool up[2];
    for (int i = 0; i < 2; ++i) {
      up[i] = alive(read_pid(fmt::format("{}/{}.pid", dir, hosts[i].key)), paths, hosts[i].what);
    }
    if (!up[0] && !up[1]) {
      say("both nodes are gone; nothing left to protect");
      return 0;
    }
    for (int i = 0; i < 2; ++i) {
      Host& h = hosts[i];
      const Host& other = hosts[1 - i];
      if (up[i] || !up[1 - i] || Clock::now() < h.next_try) continue;
      // Only a primary running alone takes a new backup.
      Result<nlohmann::json> st =
          ft::query_status(control_path(dir, other.key), std::chrono::seconds(1));
      if (!st || st->value("role", "") != "primary" || st->value("state", "") != "solo") continue;
      std::ifstream f(fmt::format("{}/{}.backup.json", dir, h.key));
      const nlohmann::json argv = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
      if (!argv.is_array() || argv.empty()) {
        say(fmt::format("{}/{}.backup.json is missing or unreadable: cannot re-protect host {}",
                        dir, h.key, h.key));
        h.next_try = Clock::now() + std::chrono::seconds(30);
        continue;
      }
      std::vector<std::string> args;
      for (const nlohmann::json& a : argv) args.push_back(a.is_string() ? a.get<std::string>() : "");
      Result<pid_t> pid = spawn_in(name + "-" + h.ns_role, args, fmt::format("{}/{}.console", dir, h.key),
                                   fmt::format("{}/{}.log", dir, h.key));
      if (!pid) {
        say(fmt::format("cannot start a backup on host {}: {}", h.key, pid.error()));
        h.next_try = Clock::now() + std::chrono::seconds(5);
        continue;
      }
      std::ofstream(fmt::format("{}/{}.pid", dir, h.key)) << *pid << "\n";
      h.started = *pid;
      h.started_at = Clock::now();
      h.next_try = Clock::now() + h.backoff;
      say(fmt::format("host {}'s node is gone and host {} runs alone at epoch {}: started a new "
                      "backup on host {} (pid {}) that joins it by state transfer",
                      h.key, other.key, st->value("epoch", 0), h.key, *pid));
    }
    pollfd none{-1, 0, 0};
    poll(&none, 0, 200);  // the supervisor's polling interval
  }
}

int status_command(const std::string& name, bool json) {
  const std::string dir = pair_dir(name);
  if (!fs::exists(dir)) {
    fmt::print(stderr, "ftvm status: no pair '{}' ({} does not exist); start one with `ftvm up`\n",
               name, dir);
    return 1;
  }
  const PairPaths paths = paths_of(name);
  std::vector<NodeView> nodes = view_nodes(paths);
  const pid_t arb = read_pid(dir + "/arbiter.pid");
  const bool arb_running = alive(arb, paths, PairProcess::kArbiter);
  const pid_t sup = read_pid(dir + "/supervisor.pid");
  const bool sup_running = alive(sup, paths, PairProcess::kSupervisor);
  std::vector<ft::HostView> views;
  for (const NodeView& v : nodes) views.push_back({v.host, v.running, v.status});
  size_t torn = 0;
  const nlohmann::json summary = ft::pair_summary(views, ft::read_history(history_path(paths), &torn));
  if (json) {
    nlohmann::json out;
    out["pair"] = name;
    for (const auto& [k, v] : summary.items()) out[k] = v;
    out["arbiter"] = {{"pid", arb}, {"running", arb_running}, {"store", paths.state}};
    out["supervisor"] = {{"pid", sup}, {"running", sup_running}};
    for (const NodeView& v : nodes) {
      out["hosts"][v.host] = {{"pid", v.pid}, {"running", v.running}, {"status", v.status}};
    }
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print("pair '{}'   arbiter: {}   store: {}   re-protection: {}\n", name,
             arb_running ? fmt::format("running (pid {})", arb) : std::string("not running"),
             paths.state,
             sup_running ? fmt::format("on (supervisor pid {})", sup) : std::string("off"));
  if (summary["transfer"].is_object()) {
    const nlohmann::json& t = summary["transfer"];
    fmt::print("a backup is joining: {} round {}, {:.1f} MB copied in {:.0f} ms\n",
               t.value("phase", "?"), t.value("rounds", 0), t.value("bytes", 0) / 1e6,
               t.value("elapsed_ms", 0.0));
  }
  auto name_or = [](const nlohmann::json& j, const char* none) {
    return j.is_string() ? j.get<std::string>() : std::string(none);
  };
  fmt::print("epoch {}   primary {}   backup {}   {}\n",
             summary["epoch"].is_null() ? std::string("none") : summary["epoch"].dump(),
             name_or(summary["primary"], "none"), name_or(summary["backup"], "none"),
             summary["paired"].get<bool>() ? "protected (paired, state hashes matching)"
                                           : "NOT protected");
  if (!summary["history"].empty()) {
    std::string h;
    for (const nlohmann::json& e : summary["history"]) {
      h += fmt::format("{}{} {} e{}", h.empty() ? "" : ", ", e.value("kind", "?"),
                       e.value("host", "?"), e.value("epoch", 0));
    }
    fmt::print("history: {}{}\n", h,
               torn > 0 ? fmt::format(" ({} unreadable lines skipped)", torn) : std::string());
  }
  for (const NodeView& v : nodes) {
    if (!v.running) {
      fmt::print("host {}: not running (pid {})\n", v.host, v.pid);
      continue;
    }
    if (v.status.is_null()) {
      fmt::print("host {}: pid {} does not answer on its control socket\n", v.host, v.pid);
      continue;
    }
    const nlohmann::json& s = v.status;
    fmt::print("host {}: {:<8} {:<20} epoch {}  pid {}  instret {:.0f}  guest {:.1f} s\n", v.host,
               s.value("role", "?"), s.value("state", "?"), s.value("epoch", 0), v.pid,
               num(s, "instret"), num(s, "guest_seconds"));
    if (s.value("role", "") == "primary") {
      fmt::print("        lag {:.1f} guest ms, {:.0f} bytes; log {:.0f} records, {:.2f} Mbit/s; held "
                 "{:.0f} outputs ({:.0f} bytes)\n",
                 num(s, "lag", "guest_ms"), num(s, "lag", "bytes"), num(s, "log", "records"),
                 num(s, "log", "mbit_per_s"), num(s, "held", "outputs"), num(s, "held", "bytes"));
    } else {
      fmt::print("        received {:.0f} records ({:.2f} Mbit/s), {:.0f} queued; {:.0f} state "
                 "hashes matched\n",
                 num(s, "log", "records"), num(s, "log", "mbit_per_s"),
                 num(s, "lag", "queued_records"), num(s, "checks", "state_hashes_matched"));
    }
    const double rejected = num(s, "rejected", "forged") + num(s, "rejected", "replayed") +
                            num(s, "rejected", "stale_epoch") + num(s, "rejected", "wrong_direction") +
                            num(s, "rejected", "unexpected_connection");
    if (rejected > 0) fmt::print("        rejected messages: {}\n", s["rejected"].dump());
    if (s.contains("arbiter_unreachable")) {
      fmt::print("        arbiter unreachable: {}\n", s["arbiter_unreachable"].get<std::string>());
    }
    if (s.contains("last_failover")) {
      fmt::print("        last failover: {}\n", s["last_failover"].dump());
    }
    if (s.contains("disk") && s["disk"].is_object()) {
      const nlohmann::json& d = s["disk"];
      const double failures = num(d, "host_failures");
      fmt::print("        disk {} ({}){}\n", d.value("path", "?"),
                 d.value("writable", false) ? "writable" : "read-only",
                 failures > 0 ? fmt::format("; {:.0f} request(s) failed on this host, the last: {}",
                                            failures, d.value("last_failure", ""))
                              : std::string());
    }
  }
  return 0;
}

int kill_command(const std::string& name, const std::string& which, const std::string& sig) {
  const std::string dir = pair_dir(name);
  int signo = SIGKILL;
  if (sig == "TERM") signo = SIGTERM;
  else if (sig == "STOP") signo = SIGSTOP;
  else if (sig == "CONT") signo = SIGCONT;
  else if (sig != "KILL") {
    fmt::print(stderr, "ftvm kill: --signal KILL, TERM, STOP or CONT\n");
    return kExitBadInput;
  }
  const PairPaths paths = paths_of(name);
  pid_t target = 0;
  PairProcess kind = PairProcess::kArbiter;
  std::string what;
  if (which == "arbiter") {
    target = read_pid(dir + "/arbiter.pid");
    what = "the arbiter";
  } else if (which == "a" || which == "b") {
    kind = which == "a" ? PairProcess::kNodeA : PairProcess::kNodeB;
    target = read_pid(fmt::format("{}/{}.pid", dir, which));
    what = fmt::format("the node on host {}", which);
  } else if (which == "primary" || which == "backup") {
    // The node that says it is `which` -- in its own status, from its own
    // pid -- and is not halted; of two, the one at the higher epoch (an old
    // primary still claiming has the lower one).
    const std::vector<NodeView> nodes = view_nodes(paths);
    const NodeView* pick = nullptr;
    const NodeView* silent = nullptr;
    int silent_count = 0;
    bool tie = false;
    auto epoch_of = [](const NodeView& v) {
      return v.status.contains("epoch") && v.status["epoch"].is_number_unsigned()
                 ? v.status["epoch"].get<uint64_t>()
                 : 0;
    };
    for (const NodeView& v : nodes) {
      if (!v.running) continue;
      if (v.status.is_null()) {
        silent = &v;
        ++silent_count;
        continue;
      }
      if (!v.status_is_its_own) {
        fmt::print(stderr,
                   "ftvm kill: host {}'s control socket answers for pid {}, but its pid file "
                   "says {}: ignored\n",
                   v.host, v.status.value("pid", 0), v.pid);
        continue;
      }
      if (v.status.value("role", "") != which || v.status.value("state", "") == "halted") continue;
      if (pick == nullptr || epoch_of(v) > epoch_of(*pick)) {
        pick = &v;
        tie = false;
      } else if (epoch_of(v) == epoch_of(*pick)) {
        tie = true;
      }
    }
    if (pick != nullptr && tie) {
      fmt::print(stderr,
                 "ftvm kill: both hosts say they are the {} at epoch {}; name the host (a or b)\n",
                 which, epoch_of(*pick));
      return 1;
    }
    if (pick != nullptr) {
      target = pick->pid;
      kind = pick->host == "a" ? PairProcess::kNodeA : PairProcess::kNodeB;
      what = fmt::format("the {} (host {}, {}, epoch {})", which, pick->host,
                         pick->status.value("state", "?"), epoch_of(*pick));
    } else if (silent_count == 1) {
      // A stopped node cannot say what it is; it is the one that does not answer.
      target = silent->pid;
      kind = silent->host == "a" ? PairProcess::kNodeA : PairProcess::kNodeB;
      what = fmt::format("the node on host {} (it does not answer; taken to be the {})",
                         silent->host, which);
    }
  } else {
    fmt::print(stderr, "ftvm kill: say primary, backup, arbiter, a or b\n");
    return kExitBadInput;
  }
  if (!alive(target, paths, kind)) {
    fmt::print(stderr, "ftvm kill: no running {} in pair '{}'\n", which, name);
    return 1;
  }
  if (kill(target, signo) != 0) {
    fmt::print(stderr, "ftvm kill: {}: {}\n", target, std::strerror(errno));
    return 1;
  }
  if (signo != SIGKILL && signo != SIGTERM) {
    fmt::print(stderr, "ftvm kill: sent SIG{} to {} (pid {})\n", sig, what, target);
    return 0;
  }
  const auto sent = Clock::now();
  while (alive(target, paths, kind) && Clock::now() - sent < std::chrono::seconds(10)) {
    pollfd none{-1, 0, 0};
    poll(&none, 0, 5);
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
  if (alive(target, paths, kind)) {
    fmt::print(stderr, "ftvm kill: sent SIG{} to {} (pid {}), but it is still there after {:.0f} ms\n",
               sig, what, target, ms);
    return 1;
  }
  fmt::print(stderr, "ftvm kill: sent SIG{} to {} (pid {}); it was gone {:.0f} ms later\n", sig,
             what, target, ms);
  return 0;
}

}  // namespace ftvm::cli
