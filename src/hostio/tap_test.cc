// TAP devices and the guest LAN of scripts/netns.sh, on real interfaces in
// network namespaces the tests make themselves. Needs root; skipped
// otherwise.
//
// TapTest moves the test's thread into a fresh, anonymous network namespace
// (unshare) and back afterwards: the namespace and every interface in it
// vanish with the last reference, even if the test process dies. Frames
// reach the TAP from a packet socket on the same interface, and leave it
// towards that socket.
//
// NetnsLayoutTest brings up scripts/netns.sh's layout under a name made of
// this process's id, plays the guest on tap0 against a client in
// NAME-client, and always runs `down` afterwards; layouts left by test
// processes that died are removed first.
#include "hostio/tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ftvm::hostio {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

// ---- namespaces and commands ----

// Moves the calling thread between network namespaces; back home at the end.
class ThreadNetns {
 public:
  ThreadNetns() : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    FTVM_CHECK(home_ >= 0);
  }
  ~ThreadNetns() {
    go_home();
    ::close(home_);
  }
  ThreadNetns(const ThreadNetns&) = delete;
  ThreadNetns& operator=(const ThreadNetns&) = delete;

  // A new, empty namespace that lives as long as something is in it.
  bool enter_new() { return ::unshare(CLONE_NEWNET) == 0; }
  // A namespace made with `ip netns add NAME`.
  bool enter(const std::string& name) {
    const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::setns(fd, CLONE_NEWNET) == 0;
    ::close(fd);
    return ok;
  }
  // Staying elsewhere would run later tests in the wrong namespace.
  void go_home() { FTVM_CHECK(::setns(home_, CLONE_NEWNET) == 0); }

 private:
  int home_;
};

struct Ran {
  int status;  // exit status, or -1 if killed
  std::string output;
};

// Runs `command` through the shell with stderr folded in, killed after 60 s.
Ran run(const std::string& command) {
  FILE* p = ::popen(("timeout 60 " + command + " 2>&1").c_str(), "r");
  FTVM_CHECK(p != nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// Interfaces of the calling thread's namespace, as "index:name".
std::vector<std::string> links() {
  std::vector<std::string> out;
  struct if_nameindex* all = ::if_nameindex();
  FTVM_CHECK(all != nullptr);
  for (struct if_nameindex* i = all; i->if_index != 0; ++i) {
    out.push_back(std::to_string(i->if_index) + ":" + i->if_name);
  }
  ::if_freenameindex(all);
  return out;
}

bool wait_readable(int fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    struct pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// ---- frames ----

using Mac = std::array<uint8_t, 6>;
constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr Mac kGuestMac = {0x52, 0x54, 0x00, 0x77, 0x00, 0x0f};  // vm::kDefaultGuestMac
constexpr uint16_t kTestEtherType = 0x88b5;                       // IEEE local experimental

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put(Bytes& b, std::span<const uint8_t> s) { b.insert(b.end(), s.begin(), s.end()); }
uint16_t get16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

Bytes ether(const Mac& dst, const Mac& src, uint16_t type, std::span<const uint8_t> payload) {
  Bytes f;
  put(f, dst);
  put(f, src);
  put16(f, type);
  put(f, payload);
  return f;
}

Bytes test_frame(uint8_t tag, size_t payload = 50) {
  Bytes p(payload);
  for (size_t i = 0; i < payload; ++i) p[i] = static_cast<uint8_t>(tag + i);
  return ether(kBroadcast, {0x02, 0, 0, 0, 0, tag}, kTestEtherType, p);
}

std::array<uint8_t, 4> ip4(const char* text) {
  std::array<uint8_t, 4> a{};
  FTVM_CHECK(::inet_pton(AF_INET, text, a.data()) == 1);
  return a;
}

uint16_t ip_checksum(std::span<const uint8_t> header) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < header.size(); i += 2) sum += header[i] << 8 | header[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// An IPv4 UDP frame with no UDP checksum (optional in IPv4).
Bytes udp_frame(const Mac& dst, const Mac& src, std::array<uint8_t, 4> sip,
                std::array<uint8_t, 4> dip, uint16_t sport, uint16_t dport,
                const std::string& payload) {
  Bytes ip;
  ip.push_back(0x45);  // version 4, 5 words
  ip.push_back(0);
  put16(ip, static_cast<uint16_t>(20 + 8 + payload.size()));
  put16(ip, 1);       // id
  put16(ip, 0x4000);  // don't fragment
  ip.push_back(64);   // ttl
  ip.push_back(17);   // UDP
  put16(ip, 0);       // checksum, below
  put(ip, sip);
  put(ip, dip);
  const uint16_t sum = ip_checksum(ip);
  ip[10] = static_cast<uint8_t>(sum >> 8);
  ip[11] = static_cast<uint8_t>(sum);
  put16(ip, sport);
  put16(ip, dport);
  put16(ip, static_cast<uint16_t>(8 + payload.size()));
  put16(ip, 0);
  ip.insert(ip.end(), payload.begin(), payload.end());
  return ether(dst, src, ETHERTYPE_IP, ip);
}

// Reads frames from `tap` until one satisfies `want` or the deadline passes.
std::optional<Bytes> wait_frame(Tap& tap, const std::function<bool(const Bytes&)>& want) {
  const auto deadline = Clock::now() + kDeadline;
  while (wait_readable(tap.fd(), deadline)) {
    std::vector<Bytes> frames;
    Result<size_t> n = tap.read_frames(frames);
    if (!n) {
      ADD_FAILURE() << n.error();
      return std::nullopt;
    }
    for (Bytes& f : frames) {
      if (want(f)) return std::move(f);
    }
  }
  return std::nullopt;
}

// A raw packet socket on interface `ifname`, sending and receiving whole
// Ethernet frames.
int packet_socket(const std::string& ifname) {
  const int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (s < 0) return -1;
  struct sockaddr_ll a{};
  a.sll_family = AF_PACKET;
  a.sll_protocol = htons(ETH_P_ALL);
  a.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
  if (a.sll_ifindex == 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// The next frame the kernel received on the packet socket's interface (not
// one it sent) that equals `want`, before the deadline.
bool packet_socket_receives(int s, const Bytes& want) {
  const auto deadline = Clock::now() + kDeadline;
  while (wait_readable(s, deadline)) {
    Bytes buf(Tap::kMaxFrameBytes);
    struct sockaddr_ll from{};
    socklen_t len = sizeof from;
    const ssize_t n =
        ::recvfrom(s, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    buf.resize(static_cast<size_t>(n));
    if (from.sll_pkttype != PACKET_OUTGOING && buf == want) return true;
  }
  return false;
}

bool is_test_frame(const Bytes& f) { return f.size() >= 14 && get16(f, 12) == kTestEtherType; }

// ---- Tap in a fresh namespace ----

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "TAP devices need root";
    if (!ns_.enter_new()) GTEST_SKIP() << "cannot make a network namespace: " << strerror(errno);
    // No router solicitations or multicast reports from the kernel.
    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
    write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
  }
  void TearDown() override {
    if (sock_ >= 0) ::close(sock_);
    ns_.go_home();
  }

  std::unique_ptr<Tap> open_tap(const std::string& name = "ftvmtap0") {
    Result<std::unique_ptr<Tap>> tap = Tap::open(name);
    EXPECT_TRUE(tap.ok()) << tap.error();
    return tap.ok() ? std::move(*tap) : nullptr;
  }

  ThreadNetns ns_;
  int sock_ = -1;
};

TEST_F(TapTest, OpenCreatesTheInterfaceAndBringsItUp) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  EXPECT_EQ(tap->name(), "ftvmtap0");
  EXPECT_GE(tap->fd(), 0);
  EXPECT_NE(::if_nametoindex("ftvmtap0"), 0u);
  const Ran show = run("ip -o link show ftvmtap0");
  EXPECT_NE(show.output.find(",UP"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("LOWER_UP"), std::string::npos) << show.output;  // carrier
}

TEST_F(TapTest, ClosingRemovesAnInterfaceItCreated) {
  open_tap().reset();
  EXPECT_EQ(::if_nametoindex("ftvmtap0"), 0u);
}

TEST_F(TapTest, DescriptorIsNonBlockingAndCloseOnExec) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  EXPECT_TRUE(::fcntl(tap->fd(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(tap->fd(), F_GETFD) & FD_CLOEXEC);
}

TEST_F(TapTest, NothingWaitingReadsNothingAtOnce) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  std::vector<Bytes> frames;
  Result<size_t> n = tap->read_frames(frames);
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 0u);
  EXPECT_TRUE(frames.empty());
}

TEST_F(TapTest, FrameSentOnTheInterfaceIsReadWhole) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  sock_ = packet_socket("ftvmtap0");
  ASSERT_GE(sock_, 0) << strerror(errno);
  const Bytes frame = test_frame(1, 1486);  // 1500 bytes: a full MTU
  ASSERT_EQ(::send(sock_, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()));
  const std::optional<Bytes> got = wait_frame(*tap, is_test_frame);
  ASSERT_TRUE(got.has_value()) << "no frame within the deadline";
  EXPECT_EQ(*got, frame);
}

TEST_F(TapTest, WrittenFrameArrivesOnTheInterface) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  sock_ = packet_socket("ftvmtap0");
  ASSERT_GE(sock_, 0) << strerror(errno);
  const Bytes frame = test_frame(2);
  ASSERT_TRUE(tap->write_frame(frame).ok());
  EXPECT_TRUE(packet_socket_receives(sock_, frame));
}

TEST_F(TapTest, ReadTakesAtMostMaxFramesInArrivalOrder) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  sock_ = packet_socket("ftvmtap0");
  ASSERT_GE(sock_, 0);
  for (uint8_t i = 0; i < 5; ++i) {
    const Bytes f = test_frame(i);
    ASSERT_EQ(::send(sock_, f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
  }
  std::vector<Bytes> got;
  const auto deadline = Clock::now() + kDeadline;
  while (got.size() < 5 && wait_readable(tap->fd(), deadline)) {
    std::vector<Bytes> frames;
    Result<size_t> n = tap->read_frames(frames, 2);
    ASSERT_TRUE(n.ok()) << n.error();
    EXPECT_LE(*n, 2u);
    EXPECT_EQ(*n, frames.size());
    for (Bytes& f : frames) {
      if (is_test_frame(f)) got.push_back(std::move(f));
    }
  }
  ASSERT_EQ(got.size(), 5u);
  for (uint8_t i = 0; i < 5; ++i) EXPECT_EQ(got[i], test_frame(i));
}

TEST_F(TapTest, ReadOfZeroFramesLeavesThemWaiting) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  sock_ = packet_socket("ftvmtap0");
  ASSERT_GE(sock_, 0);
  const Bytes f = test_frame(9);
  ASSERT_EQ(::send(sock_, f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
  ASSERT_TRUE(wait_readable(tap->fd(), Clock::now() + kDeadline));
  std::vector<Bytes> frames;
  Result<size_t> n = tap->read_frames(frames, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_TRUE(wait_frame(*tap, is_test_frame).has_value());
}

TEST_F(TapTest, RuntFrameIsRefusedByTheKernel) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  const Bytes runt(10, 0xff);
  Status s = tap->write_frame(runt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("ftvmtap0"), std::string::npos) << s.error();
}

TEST_F(TapTest, SecondOpenOfTheSameInterfaceIsBusy) {
  std::unique_ptr<Tap> tap = open_tap();
  ASSERT_NE(tap, nullptr);
  Result<std::unique_ptr<Tap>> again = Tap::open("ftvmtap0");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("another process has it open"), std::string::npos)
      << again.error();
}

TEST_F(TapTest, BadNamesAreRefused) {
  for (const std::string& name : {std::string(), std::string(16, 'x')}) {
    Result<std::unique_ptr<Tap>> tap = Tap::open(name);
    ASSERT_FALSE(tap.ok()) << name;
    EXPECT_NE(tap.error().find("bad TAP interface name"), std::string::npos) << tap.error();
  }
  EXPECT_TRUE(Tap::open(std::string(15, 'x')).ok());  // IFNAMSIZ - 1 is the limit
}

TEST_F(TapTest, InterfaceThatIsNotATapIsRefused) {
  Result<std::unique_ptr<Tap>> tap = Tap::open("lo");
  ASSERT_FALSE(tap.ok());
  EXPECT_NE(tap.error().find("not a single-queue TAP"), std::string::npos) << tap.error();
}

TEST_F(TapTest, PersistentTapIsAttachedBroughtUpAndOutlivesTheTap) {
  const Ran add = run("ip tuntap add dev ftvmp0 mode tap");
  ASSERT_EQ(add.status, 0) << add.output;
  EXPECT_EQ(run("ip -o link show ftvmp0").output.find(",UP"), std::string::npos);
  std::unique_ptr<Tap> tap = open_tap("ftvmp0");
  ASSERT_NE(tap, nullptr);
  EXPECT_NE(run("ip -o link show ftvmp0").output.find(",UP"), std::string::npos);
  tap.reset();
  EXPECT_NE(::if_nametoindex("ftvmp0"), 0u);
}

// ---- scripts/netns.sh ----

std::string netns_script() {
  return (std::filesystem::path(__FILE__).parent_path() / "../../scripts/netns.sh")
      .lexically_normal()
      .string();
}

constexpr const char* kLayoutPrefix = "ftvmt";

// Removes layouts of earlier test processes that died before their `down`.
void remove_stale_layouts() {
  DIR* d = ::opendir("/run/netns");
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    const std::string suffix = "-host";
    if (n.rfind(kLayoutPrefix, 0) != 0 || n.size() <= suffix.size() ||
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string pid = n.substr(std::strlen(kLayoutPrefix),
                                     n.size() - suffix.size() - std::strlen(kLayoutPrefix));
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::kill(std::stoi(pid), 0) != 0 && errno == ESRCH) stale.push_back(n.substr(0, n.size() - 5));
  }
  ::closedir(d);
  for (const std::string& name : stale) run(netns_script() + " down " + name);
}

class NetnsLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    remove_stale_layouts();
    host_links_ = links();
    const Ran up = run(script_ + " up " + name_);
    ASSERT_EQ(up.status, 0) << up.output;
    up_output_ = up.output;
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    ns_.go_home();
    if (::geteuid() != 0) return;
    const Ran down = run(script_ + " down " + name_);
    EXPECT_EQ(down.status, 0) << down.output;
  }

  // A UDP socket made in namespace `ns`, bound to `addr`:`port` if given.
  int udp_socket_in(const std::string& ns, const char* addr = nullptr, uint16_t port = 0) {
    EXPECT_TRUE(ns_.enter(ns)) << ns;
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ns_.go_home();
    EXPECT_GE(s, 0);
    if (s < 0) return s;
    fds_.push_back(s);
    if (addr != nullptr) {
      const sockaddr_in a = sockaddr_of(addr, port);
      EXPECT_EQ(::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0)
          << addr << ": " << strerror(errno);
    }
    return s;
  }
  static sockaddr_in sockaddr_of(const char* addr, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    FTVM_CHECK(::inet_pton(AF_INET, addr, &a.sin_addr) == 1);
    return a;
  }

  const std::string script_ = netns_script();
  const std::string name_ = kLayoutPrefix + std::to_string(::getpid());
  const std::string host_ = name_ + "-host";
  const std::string client_ = name_ + "-client";
  std::vector<std::string> host_links_;
  std::string up_output_;
  ThreadNetns ns_;
  std::vector<int> fds_;
};

TEST_F(NetnsLayoutTest, UpBuildsTheDocumentedLayoutAndDownLeavesNothing) {
  EXPECT_NE(up_output_.find("10.77.0.15"), std::string::npos) << up_output_;
  EXPECT_TRUE(std::filesystem::exists("/run/netns/" + host_));
  EXPECT_TRUE(std::filesystem::exists("/run/netns/" + client_));
  EXPECT_NE(run("ip -n " + host_ + " -o link show tap0").output.find("master br0"),
            std::string::npos);
  EXPECT_NE(run("ip -n " + host_ + " -o link show veth-client").output.find("master br0"),
            std::string::npos);
  EXPECT_NE(run("ip -n " + host_ + " -o addr show dev br0").output.find("inet 10.77.0.1/24"),
            std::string::npos);
  const Ran client_addr = run(script_ + " exec-client " + name_ + " ip -o addr show dev eth0");
  EXPECT_EQ(client_addr.status, 0) << client_addr.output;
  EXPECT_NE(client_addr.output.find("inet 10.77.0.2/24"), std::string::npos)
      << client_addr.output;
  for (const std::string& ns : {host_, client_}) {
    EXPECT_EQ(run("ip -n " + ns + " route show default").output, "") << ns;
    EXPECT_EQ(run("ip netns exec " + ns + " cat /proc/sys/net/ipv4/ip_forward").output, "0\n");
  }
  EXPECT_EQ(links(), host_links_);  // nothing appeared in the host's namespace

  const Ran again = run(script_ + " up " + name_);
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;

  const Ran down = run(script_ + " down " + name_);
  ASSERT_EQ(down.status, 0) << down.output;
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + host_));
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + client_));
  EXPECT_EQ(run("ip netns list").output.find(name_), std::string::npos);
  EXPECT_EQ(links(), host_links_);
  EXPECT_EQ(run(script_ + " down " + name_).status, 0);  // idempotent
}

TEST_F(NetnsLayoutTest, DownEndsProcessesLeftInTheNamespaces) {
  const Ran started = run(script_ + " exec-client " + name_ +
                          " sh -c 'sleep 600 >/dev/null 2>&1 & echo $!'");
  ASSERT_EQ(started.status, 0) << started.output;
  const pid_t pid = std::stoi(started.output);
  ASSERT_EQ(::kill(pid, 0), 0);
  ASSERT_EQ(run(script_ + " down " + name_).status, 0);
  // The orphan was reparented away from us; it is gone once kill(0) fails,
  // or a zombie until its new parent reaps it.
  const std::string stat = run("cat /proc/" + std::to_string(pid) + "/stat").output;
  EXPECT_TRUE(stat.empty() || stat.find(") Z ") != std::string::npos) << stat;
}

TEST_F(NetnsLayoutTest, ClientReachesTheBridgeAndNothingRoutesOut) {
  // connect() on a UDP socket only looks the route up; nothing is sent.
  for (const std::string& ns : {host_, client_}) {
    const int s = udp_socket_in(ns);
    const sockaddr_in outside = sockaddr_of("192.0.2.1", 9);  // TEST-NET-1
    EXPECT_NE(::connect(s, reinterpret_cast<const sockaddr*>(&outside), sizeof outside), 0);
    EXPECT_EQ(errno, ENETUNREACH) << ns;
  }
  const int server = udp_socket_in(host_, "10.77.0.1", 7001);
  const int client = udp_socket_in(client_);
  const sockaddr_in to = sockaddr_of("10.77.0.1", 7001);
  const std::string msg = "hello bridge";
  ASSERT_EQ(::sendto(client, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                     sizeof to),
            static_cast<ssize_t>(msg.size()));
  ASSERT_TRUE(wait_readable(server, Clock::now() + kDeadline));
  char buf[64];
  const ssize_t n = ::recv(server, buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), msg);
}

// Plays the guest on tap0: answers the client's ARP for 10.77.0.15, takes
// its datagram, and sends one back.
TEST_F(NetnsLayoutTest, AGuestOnTap0TalksToAClient) {
  ASSERT_TRUE(ns_.enter(host_));
  Result<std::unique_ptr<Tap>> opened = Tap::open("tap0");
  ns_.go_home();
  ASSERT_TRUE(opened.ok()) << opened.error();
  Tap& tap = **opened;

  const int client = udp_socket_in(client_, "10.77.0.2", 0);
  const sockaddr_in guest = sockaddr_of("10.77.0.15", 7777);
  const std::string hello = "hello guest";
  ASSERT_EQ(::sendto(client, hello.data(), hello.size(), 0,
                     reinterpret_cast<const sockaddr*>(&guest), sizeof guest),
            static_cast<ssize_t>(hello.size()));

  const auto guest_ip = ip4("10.77.0.15");
  const auto client_ip = ip4("10.77.0.2");
  // ARP: htype 1, ptype 0x0800, 6, 4, op, sha, spa, tha, tpa.
  const std::optional<Bytes> who_has = wait_frame(tap, [&](const Bytes& f) {
    return f.size() >= 42 && get16(f, 12) == ETHERTYPE_ARP && get16(f, 20) == 1 &&
           std::equal(guest_ip.begin(), guest_ip.end(), f.begin() + 38);
  });
  ASSERT_TRUE(who_has.has_value()) << "no ARP request for 10.77.0.15 reached tap0";
  EXPECT_TRUE(std::equal(client_ip.begin(), client_ip.end(), who_has->begin() + 28));
  Mac client_mac;
  std::copy(who_has->begin() + 22, who_has->begin() + 28, client_mac.begin());

  Bytes arp;
  put16(arp, 1);
  put16(arp, ETHERTYPE_IP);
  arp.push_back(6);
  arp.push_back(4);
  put16(arp, 2);  // reply
  put(arp, kGuestMac);
  put(arp, guest_ip);
  put(arp, client_mac);
  put(arp, client_ip);
  ASSERT_TRUE(tap.write_frame(ether(client_mac, kGuestMac, ETHERTYPE_ARP, arp)).ok());

  const std::optional<Bytes> datagram = wait_frame(tap, [&](const Bytes& f) {
    return f.size() >= 42 && get16(f, 12) == ETHERTYPE_IP && f[23] == 17 &&
           std::equal(guest_ip.begin(), guest_ip.end(), f.begin() + 30) && get16(f, 36) == 7777;
  });
  ASSERT_TRUE(datagram.has_value()) << "the client's datagram did not reach tap0";
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), datagram->begin()));
  EXPECT_EQ(std::string(datagram->begin() + 42, datagram->end()), hello);
  const uint16_t client_port = get16(*datagram, 34);

  const std::string reply = "hello client";
  ASSERT_TRUE(tap.write_frame(udp_frame(client_mac, kGuestMac, guest_ip, client_ip, 7777,
                                        client_port, reply))
                  .ok());
  ASSERT_TRUE(wait_readable(client, Clock::now() + kDeadline)) << "no reply reached the client";
  char buf[64];
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  const ssize_t n =
      ::recvfrom(client, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), reply);
  EXPECT_EQ(from.sin_addr.s_addr, guest.sin_addr.s_addr);
  EXPECT_EQ(ntohs(from.sin_port), 7777);

  opened->reset();
  // tap0 is persistent: a restarted ftvm finds it still on the bridge.
  EXPECT_NE(run("ip -n " + host_ + " -o link show tap0").output.find("master br0"),
            std::string::npos);
}

}  // namespace
}  // namespace ftvm::hostio
