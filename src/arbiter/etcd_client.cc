// The etcd backend: the test-and-set as an etcd v3 transaction
// (docs/arbiter.md "etcd"), sent as JSON to etcd's gRPC gateway.
#include "arbiter/etcd_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

namespace ftvm::arbiter {

namespace internal {

namespace {

constexpr size_t kMaxResponse = 4 << 20;
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Decodes a chunked body; nullopt when it is malformed or incomplete.
std::optional<std::string> dechunk(const std::string& in) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) return std::nullopt;
    size_t len = 0;
    size_t i = pos;
    for (; i < eol && std::isxdigit(static_cast<unsigned char>(in[i])); ++i) {
      len = len * 16 + static_cast<size_t>(std::stoi(std::string(1, in[i]), nullptr, 16));
      if (len > kMaxResponse) return std::nullopt;
    }
    if (i == pos) return std::nullopt;
    pos = eol + 2;
    if (len == 0) return out;
    if (in.size() < pos + len + 2) return std::nullopt;
    out.append(in, pos, len);
    pos += len + 2;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string base64_encode(const std::string& in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                       static_cast<uint8_t>(in[i + 2]);
    out += kBase64[v >> 18];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += kBase64[v >> 18];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8;
    out += kBase64[v >> 18];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(const std::string& in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      uint32_t d = 0;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
      } else {
        const char* p = pad ? nullptr : std::strchr(kBase64, c);
        if (p == nullptr || c == '\0') return std::nullopt;
        d = static_cast<uint32_t>(p - kBase64);
      }
      v = v << 6 | d;
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 255);
    if (pad < 1) out += static_cast<char>(v & 255);
  }
  return out;
}

std::string etcd_grant_key(const std::string& vm, uint64_t epoch) {
  return fmt::format("ftvm/arbiter/grant/{}/{:020}", vm, epoch);
}

std::string etcd_latest_key(const std::string& vm) { return "ftvm/arbiter/latest/" + vm; }

Result<std::optional<HttpResponse>> parse_http_response(const std::string& in, bool closed,
                                                        const std::string& peer) {
  auto garbled = [&](const char* what) {
    return make_error(fmt::format("unexpected HTTP response from {}: {}", peer, what));
  };
  const size_t header_end = in.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (in.size() > kMaxResponse) return garbled("response too large");
    if (closed) return garbled("connection closed before the response was complete");
    return std::optional<HttpResponse>{};
  }
  const std::string head = in.substr(0, header_end);
  auto digit = [&](size_t i) { return head[i] >= '0' && head[i] <= '9'; };
  if (head.size() < 12 || !head.starts_with("HTTP/1.") || head[8] != ' ' || !digit(9) ||
      !digit(10) || !digit(11) || (head.size() > 12 && head[12] != ' ' && head[12] != '\r'))
    return garbled("bad status line");
  HttpResponse resp;
  resp.status = std::stoi(head.substr(9, 3));
  std::optional<size_t> content_length;
  bool chunked = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string field =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const size_t colon = field.find(':');
    if (colon != std::string::npos) {
      const std::string name = lower(field.substr(0, colon));
      std::string value = field.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t") + 1);
      if (name == "content-length") {
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos ||
            value.size() > 9)
          return garbled("bad Content-Length");
        const size_t len = std::stoul(value);
        if (content_length && *content_length != len) return garbled("two Content-Lengths");
        content_length = len;
      } else if (name == "transfer-encoding" &&
                 lower(value).find("chunked") != std::string::npos) {
        chunked = true;
      }
    }
    pos = next;
  }
  const std::string rest = in.substr(header_end + 4);
  if (chunked) {
    if (auto b = dechunk(rest)) {
      resp.body = std::move(*b);
      return std::optional<HttpResponse>{std::move(resp)};
    }
  } else if (content_length) {
    if (*content_length > kMaxResponse) return garbled("response too large");
    if (rest.size() >= *content_length) {
      resp.body = rest.substr(0, *content_length);
      return std::optional<HttpResponse>{std::move(resp)};
    }
  } else if (closed) {
    resp.body = rest;
    return std::optional<HttpResponse>{std::move(resp)};
  }
  if (in.size() > kMaxResponse) return garbled("response too large");
  if (closed) return garbled("connection closed before the response was complete");
  return std::optional<HttpResponse>{};
}

Result<HttpResponse> http_request(const Endpoint& ep, const std::string& method,
                                  const std::string& path, const std::string& body,
                                  Clock::time_point deadline, const std::string& peer,
                                  std::chrono::milliseconds timeout) {
  Result<TcpStream> s = TcpStream::connect(ep, deadline, peer, timeout);
  if (!s) return make_error(s.error());
  std::string req = fmt::format("{} {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n", method,
                                path, ep.host, ep.port);
  if (!body.empty()) {
    req += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  req += "\r\n" + body;
  if (Status w = s->write_all(req); !w) return make_error(w.error());
  std::string in;
  bool closed = false;
  for (;;) {
    Result<std::optional<HttpResponse>> r = parse_http_response(in, closed, peer);
    if (!r) return make_error(r.error());
    if (*r) return std::move(**r);
    Result<size_t> n = s->read_some(in);
    if (!n) return make_error(n.error());
    closed = *n == 0;
  }
}

std::optional<LatestGrant> parse_latest_value(const std::string& vm, const std::string& v) {
  if (v.size() < 22 || v[20] != ' ' || !valid_name(v.substr(21))) return std::nullopt;
  uint64_t epoch = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (v[i] < '0' || v[i] > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(v[i] - '0');
    if (epoch > (UINT64_MAX - d) / 10) return std::nullopt;
    epoch = epoch * 10 + d;
  }
  if (epoch == 0) return std::nullopt;  // epoch 0 is never written as a grant's latest
  return LatestGrant{vm, epoch, v.substr(21)};
}

namespace {

using nlohmann::json;

// The only key's value in a range response `r` (an object with an optional
// "kvs" array), or nullopt when it holds none.
Result<std::optional<std::string>> range_value(const json& r) {
  if (!r.is_object()) return make_error("range response is not an object");
  if (!r.contains("kvs")) return std::optional<std::string>{};
  const json& kvs = r["kvs"];
  if (!kvs.is_array()) return make_error("kvs is not an array");
  if (kvs.empty()) return std::optional<std::string>{};
  if (kvs.size() != 1 || !kvs[0].is_object()) return make_error("unexpected range response");
  if (!kvs[0].contains("value")) return std::optional<std::string>{std::string()};
  if (!kvs[0]["value"].is_string()) return make_error("value is not a string");
  auto v = base64_decode(kvs[0]["value"].get<std::string>());
  if (!v) return make_error("value is not base64");
  return std::optional<std::string>{std::move(*v)};
}

// The body of a 200 response as a JSON object, or an error saying what etcd said.
Result<json> json_body(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (r.status != 200) {
    std::string why = r.body.substr(0, 200);
    if (j.is_object() && j.contains("message") && j["message"].is_string())
      why = j["message"].get<std::string>();
    return make_error(fmt::format("HTTP {}: {}", r.status, why));
  }
  if (j.is_discarded() || !j.is_object()) return make_error("malformed JSON");
  return j;
}

}  // namespace

Result<TxnOutcome> parse_txn_response(const HttpResponse& response) {
  Result<json> j = json_body(response);
  if (!j) return make_error(j.error());
  TxnOutcome out;
  if (j->contains("succeeded")) {
    const json& ok = (*j)["succeeded"];
    if (!ok.is_boolean()) return make_error("succeeded is not a boolean");
    out.succeeded = ok.get<bool>();
  }
  if (out.succeeded) return out;
  if (!j->contains("responses") || !(*j)["responses"].is_array() ||
      (*j)["responses"].size() != 2)
    return make_error("missing range responses");
  const json& responses = (*j)["responses"];
  for (size_t i = 0; i < 2; ++i) {
    if (!responses[i].is_object() || !responses[i].contains("response_range"))
      return make_error("missing range response");
    Result<std::optional<std::string>> v = range_value(responses[i]["response_range"]);
    if (!v) return make_error(v.error());
    (i == 0 ? out.grant_holder : out.latest_value) = std::move(*v);
  }
  return out;
}

Result<std::optional<std::string>> parse_range_response(const HttpResponse& response) {
  Result<json> j = json_body(response);
  if (!j) return make_error(j.error());
  return range_value(*j);
}

}  // namespace internal

namespace {

using internal::Clock;
using nlohmann::json;

std::string b64(const std::string& s) { return internal::base64_encode(s); }

class EtcdClient final : public Client {
 public:
  EtcdClient(Endpoint ep, std::string url) : ep_(std::move(ep)), url_(std::move(url)) {}

  Result<Grant> claim(const std::string& vm, uint64_t epoch, const std::string& host_id,
                      std::chrono::milliseconds timeout) override;
  Result<LatestGrant> latest(const std::string& vm, std::chrono::milliseconds timeout) override;
  std::string describe() const override { return url_; }

 private:
  // POSTs `request` to `path` and returns the response, or an error naming etcd.
  Result<internal::HttpResponse> post(const std::string& path, const json& request,
                                      Clock::time_point deadline,
                                      std::chrono::milliseconds timeout) const {
    return internal::http_request(ep_, "POST", path, request.dump(), deadline, "etcd at " + url_,
                                  timeout);
  }
  Error garbled(const std::string& why) const {
    return make_error(fmt::format("unexpected answer from etcd at {}: {}", url_, why));
  }

  const Endpoint ep_;
  const std::string url_;
};

Result<LatestGrant> EtcdClient::latest(const std::string& vm, std::chrono::milliseconds timeout) {
  if (!valid_name(vm)) return make_error("bad vm id (1-255 printable characters, no spaces)");
  const std::string key = internal::etcd_latest_key(vm);
  Result<internal::HttpResponse> r =
      post("/v3/kv/range", json{{"key", b64(key)}}, Clock::now() + timeout, timeout);
  if (!r) return make_error(r.error());
  Result<std::optional<std::string>> v = internal::parse_range_response(*r);
  if (!v) return garbled(v.error());
  if (!*v) return LatestGrant{vm, 0, ""};
  std::optional<LatestGrant> l = internal::parse_latest_value(vm, **v);
  if (!l) return garbled("bad value under " + key);
  return *l;
}

Result<Grant> EtcdClient::claim(const std::string& vm, uint64_t epoch, const std::string& host_id,
                                std::chrono::milliseconds timeout) {
  if (!valid_name(vm)) return make_error("bad vm id (1-255 printable characters, no spaces)");
  if (!valid_host_id(host_id)) return make_error(bad_host_id(host_id));
  const std::string me = claimant(host_id);
  const auto deadline = Clock::now() + timeout;
  const std::string grant_key = internal::etcd_grant_key(vm, epoch);
  const std::string latest_key = internal::etcd_latest_key(vm);
  const std::string padded = fmt::format("{:020}", epoch);
  const json success = json::array({
      {{"request_put", {{"key", b64(grant_key)}, {"value", b64(me)}}}},
      {{"request_put", {{"key", b64(latest_key)}, {"value", b64(padded + " " + me)}}}},
  });
  const json failure = json::array({
      {{"request_range", {{"key", b64(grant_key)}}}},
      {{"request_range", {{"key", b64(latest_key)}}}},
  });
  const json grant_absent = {
      {"key", b64(grant_key)}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}};
  // etcd fails a VALUE comparison against a missing key, so the vm's first
  // grant needs its own form of the transaction: "latest is absent" instead of
  // "latest is below epoch". Start with the common case; the failure branch's
  // reads (atomic with the comparisons) say which form to try next.
  bool latest_exists = true;
  Grant g{vm, epoch, "", epoch, false};
  for (;;) {
    const json latest_cmp =
        latest_exists
            ? json{{"key", b64(latest_key)}, {"target", "VALUE"}, {"result", "LESS"},
                   {"value", b64(padded)}}
            : json{{"key", b64(latest_key)}, {"target", "CREATE"}, {"result", "EQUAL"},
                   {"create_revision", "0"}};
    const json request = {{"compare", json::array({grant_absent, latest_cmp})},
                          {"success", success},
                          {"failure", failure}};
    Result<internal::HttpResponse> r = post("/v3/kv/txn", request, deadline, timeout);
    if (!r) return make_error(r.error());
    Result<internal::TxnOutcome> t = internal::parse_txn_response(*r);
    if (!t) return garbled(t.error());
    if (t->succeeded) {
      g.holder = me;
      g.won = true;
      return g;
    }
    if (t->latest_value) {
      std::optional<LatestGrant> l = internal::parse_latest_value(vm, *t->latest_value);
      if (!l) return garbled("bad value under " + latest_key);
      if (l->epoch >= epoch) {
        // At or below the vm's latest grant: refused, unless this very
        // claimant holds exactly that epoch (an idempotent retry).
        g.held_epoch = l->epoch;
        g.holder = l->holder;
        g.won = l->epoch == epoch && l->holder == me;
        return g;
      }
      // Latest is below epoch: only the "absent" form fails this way (another
      // claimant created latest meanwhile) -- unless (vm, epoch) has a grant
      // that latest does not cover, which no claim ever writes.
      if (t->grant_holder) return garbled(grant_key + " is set above " + latest_key);
      latest_exists = true;
    } else {
      if (t->grant_holder) return garbled(grant_key + " is set but " + latest_key + " is not");
      latest_exists = false;
    }
    if (Clock::now() >= deadline)
      return make_error(fmt::format("no decision from etcd at {} within {} ms", url_,
                                    timeout.count()));
  }
}

}  // namespace

std::unique_ptr<Client> make_etcd_client(Endpoint endpoint, std::string url) {
  return std::make_unique<EtcdClient>(std::move(endpoint), std::move(url));
}

}  // namespace ftvm::arbiter
