// The embedded arbiter's client, and choosing a client by URL.
#include "arbiter/client.h"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <time.h>

#include <algorithm>
#include <atomic>

#include "arbiter/etcd_client.h"
#include "arbiter/protocol.h"
#include "arbiter/tcp.h"

namespace ftvm::arbiter {

namespace {

using internal::Clock;

// One connection per claim: connect, send the request line, read one reply line.
class EmbeddedClient final : public Client {
 public:
  EmbeddedClient(Endpoint ep, std::string url, std::shared_ptr<const auth::Secret> secret)
      : ep_(std::move(ep)), url_(std::move(url)), secret_(std::move(secret)) {}

  Result<Grant> claim(const std::string& vm, uint64_t epoch, const std::string& host_id,
                      std::chrono::milliseconds timeout) override {
    if (!valid_name(vm)) return make_error("bad vm id (1-255 printable characters, no spaces)");
    if (!valid_host_id(host_id)) return make_error(bad_host_id(host_id));
    const std::string me = claimant(host_id);
    const uint64_t seq = internal::next_seq();
    const std::string request = encode_request(secret_.get(), vm, epoch, me, seq);
    Result<std::string> line = exchange(request, timeout);
    if (!line) return make_error(line.error());
    return decode_reply(secret_.get(), request, vm, epoch, me, seq, *line, peer());
  }

  Result<LatestGrant> latest(const std::string& vm, std::chrono::milliseconds timeout) override {
    if (!valid_name(vm)) return make_error("bad vm id (1-255 printable characters, no spaces)");
    const uint64_t seq = internal::next_seq();
    const std::string request = encode_latest_request(secret_.get(), vm, seq);
    Result<std::string> line = exchange(request, timeout);
    if (!line) return make_error(line.error());
    return decode_latest_reply(secret_.get(), request, vm, seq, *line, peer());
  }

  std::string describe() const override { return url_; }

 private:
  std::string peer() const { return "the arbiter at " + url_; }

  // Sends `request` on a new connection and returns the reply line.
  Result<std::string> exchange(const std::string& request, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    Result<internal::TcpStream> s = internal::TcpStream::connect(ep_, deadline, peer(), timeout);
    if (!s) return make_error(s.error());
    if (Status w = s->write_all(request + "\n"); !w) return make_error(w.error());
    std::string in;
    while (in.find('\n') == std::string::npos) {
      if (in.size() > kMaxLine)
        return make_error(fmt::format("{} sent an overlong reply", peer()));
      Result<size_t> r = s->read_some(in);
      if (!r) return make_error(r.error());
      if (*r == 0)
        return make_error(fmt::format("{} closed the connection without an answer", peer()));
    }
    std::string line = in.substr(0, in.find('\n'));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  const Endpoint ep_;
  const std::string url_;
  const std::shared_ptr<const auth::Secret> secret_;
};

}  // namespace

bool valid_host_id(const std::string& host_id) {
  return valid_name(host_id) && host_id.size() <= kMaxHostIdLength &&
         host_id.find('#') == std::string::npos;
}

std::string bad_host_id(const std::string& host_id) {
  return fmt::format("bad host id '{}' (1-{} printable characters, no spaces and no '#')",
                     host_id, kMaxHostIdLength);
}

Client::Client() {
  uint8_t raw[kNonceHexDigits / 2];
  FTVM_CHECK(RAND_bytes(raw, sizeof raw) == 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : raw) {
    nonce_ += kDigits[b >> 4];
    nonce_ += kDigits[b & 15];
  }
}

std::string Client::host_of(const std::string& claimant) {
  return claimant.substr(0, claimant.rfind('#'));
}

namespace internal {

uint64_t next_seq() {
  static std::atomic<uint64_t> last{0};
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t now =
      static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  uint64_t prev = last.load();
  uint64_t next;
  do {
    next = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, next));
  return next;
}

}  // namespace internal

Result<std::unique_ptr<Client>> connect_arbiter(const std::string& url,
                                                std::shared_ptr<const auth::Secret> secret) {
  constexpr std::string_view kFtvm = "ftvm://", kEtcd = "etcd://";
  auto bad = [&](const std::string& why) {
    return make_error(fmt::format("bad arbiter URL '{}': {} (use ADDR:PORT, ftvm://ADDR:PORT or "
                                  "etcd://HOST:PORT, with an IPv4 address)",
                                  url, why));
  };
  const bool etcd = url.starts_with(kEtcd);
  std::string rest = url;
  if (etcd) {
    rest = url.substr(kEtcd.size());
  } else if (url.starts_with(kFtvm)) {
    rest = url.substr(kFtvm.size());
  } else if (url.find("://") != std::string::npos) {
    return bad("unknown scheme");
  }
  if (etcd && rest.starts_with("localhost:")) rest = "127.0.0.1" + rest.substr(9);
  Result<Endpoint> ep = parse_endpoint(rest);
  if (!ep) return bad(ep.error());
  if (ep->port == 0) return bad("port 0");
  if (etcd) return make_etcd_client(std::move(*ep), url);
  return std::unique_ptr<Client>(new EmbeddedClient(
      std::move(*ep), url.starts_with(kFtvm) ? url : std::string(kFtvm) + url, std::move(secret)));
}

}  // namespace ftvm::arbiter
