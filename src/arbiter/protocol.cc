// Encoding and checking of the arbiter's request and reply lines.
#include "arbiter/protocol.h"

#include <fmt/format.h>

#include <span>
#include <sstream>
#include <vector>

namespace ftvm::arbiter {

namespace {

// Context labels keep a request MAC from ever verifying as a reply MAC (or as
// any other message authenticated with the same secret).
constexpr std::string_view kRequestLabel = "ftvm-arbiter-request-v1\n";
constexpr std::string_view kReplyLabel = "ftvm-arbiter-reply-v1\n";

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string to_hex(const auth::Mac& mac) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(mac.size() * 2);
  for (uint8_t b : mac) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::vector<std::string> split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string t; in >> t;) out.push_back(std::move(t));
  return out;
}

}  // namespace

namespace internal {

std::string request_mac_hex(const auth::Secret& secret, const std::string& body) {
  return to_hex(secret.mac({bytes(kRequestLabel), bytes(body)}));
}

bool verify_request_mac(const auth::Secret& secret, const std::string& body, const auth::Mac& mac) {
  return secret.verify({bytes(kRequestLabel), bytes(body)}, mac);
}

std::string reply_mac_hex(const auth::Secret& secret, const std::string& request_line,
                          const std::string& body) {
  return to_hex(
      secret.mac({bytes(kReplyLabel), bytes(request_line), bytes(std::string_view("\n")),
                  bytes(body)}));
}

std::optional<auth::Mac> parse_mac_hex(const std::string& text) {
  if (text.size() != 2 * auth::kMacSize) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  auth::Mac mac{};
  for (size_t i = 0; i < mac.size(); ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return mac;
}

std::optional<uint64_t> parse_u64(const std::string& text) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace internal

std::string encode_request(const auth::Secret* secret, const std::string& vm, uint64_t epoch,
                           const std::string& claimant, uint64_t seq) {
  if (secret == nullptr) return fmt::format("CLAIM {} {} {}", vm, epoch, claimant);
  const std::string body = fmt::format("CLAIM {} {} {} {}", vm, epoch, claimant, seq);
  return body + " " + internal::request_mac_hex(*secret, body);
}

std::string encode_reply(const auth::Secret* secret, const std::string& request_line, uint64_t seq,
                         const Grant& g) {
  std::string body = g.won ? fmt::format("GRANTED {} {} {}", g.vm_id, g.epoch, g.holder)
                           : fmt::format("DENIED {} {} {} {}", g.vm_id, g.epoch, g.holder,
                                         g.held_epoch);
  if (secret == nullptr) return body;
  body += fmt::format(" {}", seq);
  return body + " " + internal::reply_mac_hex(*secret, request_line, body);
}

namespace {

// Splits a reply line into its fields, checking the authenticated form's
// `seq` and `mac` (then dropped) when `secret` is set: `fields` is the
// number of fields before them. An `ERROR` reply is an error naming `peer`.
Result<std::vector<std::string>> reply_fields(const auth::Secret* secret,
                                              const std::string& request_line, uint64_t seq,
                                              const std::string& reply_line, size_t fields,
                                              const std::string& peer) {
  auto garbled = [&] {
    return make_error(fmt::format("unexpected reply from {}: '{}'", peer, reply_line));
  };
  if (reply_line.rfind("ERROR", 0) == 0) {
    return make_error(fmt::format("{} refused: {}", peer,
                                  reply_line.size() > 6 ? reply_line.substr(6) : "(no reason)"));
  }
  std::vector<std::string> t = split(reply_line);
  if (t.empty()) return garbled();
  if (secret != nullptr) {
    if (t.size() != fields + 2) {
      return make_error(fmt::format(
          "unauthenticated reply from {} (is the arbiter running without the secret?): '{}'", peer,
          reply_line));
    }
    if (internal::parse_u64(t[fields]) != seq) {
      return make_error(fmt::format(
          "reply from {} answers another request (seq {}, ours {}): a replayed reply; ignored",
          peer, t[fields], seq));
    }
    const auto mac = internal::parse_mac_hex(t.back());
    const std::string body = reply_line.substr(0, reply_line.rfind(' '));
    if (!mac || !secret->verify({bytes(kReplyLabel), bytes(request_line), bytes("\n"), bytes(body)},
                                *mac)) {
      return make_error(fmt::format(
          "reply from {} failed authentication (a forged reply, or the arbiter has another "
          "secret); ignored",
          peer));
    }
    t.resize(fields);
  } else if (t.size() != fields) {
    return garbled();
  }
  return t;
}

}  // namespace

Result<Grant> decode_reply(const auth::Secret* secret, const std::string& request_line,
                           const std::string& vm, uint64_t epoch, const std::string& claimant,
                           uint64_t seq, const std::string& reply_line, const std::string& peer) {
  auto garbled = [&] {
    return make_error(fmt::format("unexpected reply from {}: '{}'", peer, reply_line));
  };
  const bool granted = reply_line.rfind("GRANTED ", 0) == 0;
  if (!granted && reply_line.rfind("DENIED ", 0) != 0 && reply_line.rfind("ERROR", 0) != 0)
    return garbled();
  const size_t fields = granted ? 4 : 5;  // verb vm epoch holder [held_epoch]
  Result<std::vector<std::string>> f =
      reply_fields(secret, request_line, seq, reply_line, fields, peer);
  if (!f) return make_error(f.error());
  const std::vector<std::string>& t = *f;
  if (t[0] != (granted ? "GRANTED" : "DENIED")) return garbled();
  if (t[1] != vm || internal::parse_u64(t[2]) != epoch || !valid_name(t[3])) return garbled();
  Grant g{vm, epoch, t[3], epoch, granted};
  if (!granted) {
    // A refusal names the vm's latest grant: at or above the claimed epoch,
    // and never the claimant's own grant of exactly that epoch (that is a win).
    const auto held = internal::parse_u64(t[4]);
    if (!held || *held < epoch || (*held == epoch && t[3] == claimant)) return garbled();
    g.held_epoch = *held;
  } else if (t[3] != claimant) {
    return garbled();
  }
  return g;
}

std::string encode_latest_request(const auth::Secret* secret, const std::string& vm,
                                  uint64_t seq) {
  if (secret == nullptr) return fmt::format("LATEST {}", vm);
  const std::string body = fmt::format("LATEST {} {}", vm, seq);
  return body + " " + internal::request_mac_hex(*secret, body);
}

std::string encode_latest_reply(const auth::Secret* secret, const std::string& request_line,
                                uint64_t seq, const LatestGrant& latest) {
  std::string body = fmt::format("LATEST {} {} {}", latest.vm_id, latest.epoch,
                                 latest.epoch == 0 ? std::string("-") : latest.holder);
  if (secret == nullptr) return body;
  body += fmt::format(" {}", seq);
  return body + " " + internal::reply_mac_hex(*secret, request_line, body);
}

Result<LatestGrant> decode_latest_reply(const auth::Secret* secret,
                                        const std::string& request_line, const std::string& vm,
                                        uint64_t seq, const std::string& reply_line,
                                        const std::string& peer) {
  auto garbled = [&] {
    return make_error(fmt::format("unexpected reply from {}: '{}'", peer, reply_line));
  };
  if (reply_line.rfind("LATEST ", 0) != 0 && reply_line.rfind("ERROR", 0) != 0) return garbled();
  Result<std::vector<std::string>> f = reply_fields(secret, request_line, seq, reply_line, 4, peer);
  if (!f) return make_error(f.error());
  const std::vector<std::string>& t = *f;
  const auto epoch = internal::parse_u64(t[2]);
  if (t[0] != "LATEST" || t[1] != vm || !epoch || !valid_name(t[3])) return garbled();
  if (*epoch == 0 && t[3] != "-") return garbled();
  return LatestGrant{vm, *epoch, *epoch == 0 ? std::string() : t[3]};
}

DecodedRequest decode_request(const auth::Secret* secret, const std::string& line) {
  DecodedRequest out;
  auto fail = [&](std::string why, bool forged = false) {
    out.error = std::move(why);
    out.forged = forged;
    return out;
  };
  std::vector<std::string> t = split(line);
  if (secret != nullptr) {
    // The MAC is checked before anything else in the line is believed.
    constexpr size_t kHex = 2 * auth::kMacSize;
    const std::optional<auth::Mac> mac =
        line.size() > kHex && line[line.size() - kHex - 1] == ' '
            ? internal::parse_mac_hex(line.substr(line.size() - kHex))
            : std::nullopt;
    if (t.size() < 2 || !mac) {
      return fail("missing MAC (this arbiter requires authenticated requests: give the client "
                  "the pair's secret)",
                  true);
    }
    const std::string body = line.substr(0, line.size() - kHex - 1);
    if (!internal::verify_request_mac(*secret, body, *mac))
      return fail("bad MAC (a forged request, or the client has another secret)", true);
    t = split(body);
    if (t.empty() || (t[0] != "CLAIM" && t[0] != "LATEST"))
      return fail("unknown request (expected CLAIM <vm> <epoch> <claimant> <seq> <mac> or "
                  "LATEST <vm> <seq> <mac>)");
    const bool claim = t[0] == "CLAIM";
    if (claim && t.size() != 5) return fail("expected CLAIM <vm> <epoch> <claimant> <seq> <mac>");
    if (!claim && t.size() != 3) return fail("expected LATEST <vm> <seq> <mac>");
    const auto seq = internal::parse_u64(t.back());
    if (!seq) return fail("seq must be a decimal number below 2^64");
    Request r;
    r.seq = *seq;
    t.pop_back();
    if (!claim) {
      r.kind = RequestKind::kLatest;
      r.vm = t[1];
    } else {
      const auto epoch = internal::parse_u64(t[2]);
      if (!epoch) return fail("epoch must be a decimal number below 2^64");
      r.vm = t[1];
      r.epoch = *epoch;
      r.claimant = t[3];
    }
    if (!valid_name(r.vm)) return fail("bad vm id (1-255 printable characters, no spaces)");
    if (claim && !valid_name(r.claimant))
      return fail("bad claimant (1-255 printable characters, no spaces)");
    out.request = std::move(r);
    return out;
  }
  if ((t.size() == 6 && t[0] == "CLAIM" && internal::parse_mac_hex(t[5])) ||
      (t.size() == 4 && t[0] == "LATEST" && internal::parse_mac_hex(t[3]))) {
    return fail("this arbiter runs without a secret and cannot check authenticated requests "
                "(start it with --secret FILE, or give the client no secret)");
  }
  if (t.empty() || (t[0] != "CLAIM" && t[0] != "LATEST"))
    return fail("unknown request (expected CLAIM <vm> <epoch> <claimant> or LATEST <vm>)");
  Request r;
  if (t[0] == "LATEST") {
    if (t.size() != 2) return fail("expected LATEST <vm>");
    r.kind = RequestKind::kLatest;
    r.vm = t[1];
  } else {
    if (t.size() != 4) return fail("expected CLAIM <vm> <epoch> <claimant>");
    const auto epoch = internal::parse_u64(t[2]);
    if (!epoch) return fail("epoch must be a decimal number below 2^64");
    r.vm = t[1];
    r.epoch = *epoch;
    r.claimant = t[3];
    if (!valid_name(r.claimant)) return fail("bad claimant (1-255 printable characters, no spaces)");
  }
  if (!valid_name(r.vm)) return fail("bad vm id (1-255 printable characters, no spaces)");
  out.request = std::move(r);
  return out;
}

}  // namespace ftvm::arbiter
