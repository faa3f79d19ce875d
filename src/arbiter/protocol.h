// The embedded arbiter's wire format (docs/arbiter.md "Protocol"): request
// and reply lines, plain or authenticated with the pair's shared secret.
//
// Authenticated lines end in ` <seq> <mac>`: `seq` is the request's sequence
// number (the reply echoes it) and `mac` is the lowercase hex HMAC-SHA256 of a
// context label and the line's bytes before ` <mac>`; a reply's MAC also covers
// the whole request line, so a reply is only good for the request it answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "arbiter/arbiter_store.h"
#include "auth/secret.h"
#include "util/result.h"

namespace ftvm::arbiter {

// Longest request or reply line, without its newline.
inline constexpr size_t kMaxLine = 1024;

enum class RequestKind {
  kClaim,   // CLAIM: test-and-set of (vm, epoch) for a claimant
  kLatest,  // LATEST: the vm's highest granted epoch and its holder
};

// A request line, decoded. `epoch` and `claimant` are set for kClaim only;
// `seq` in the authenticated form only (else 0).
struct Request {
  RequestKind kind = RequestKind::kClaim;
  std::string vm;
  uint64_t epoch = 0;
  std::string claimant;
  uint64_t seq = 0;
};

// What decode_request made of a line: the request, or why not -- `error` is
// the text of the `ERROR` reply and `forged` says the MAC was missing or bad.
struct DecodedRequest {
  std::optional<Request> request;
  std::string error;
  bool forged = false;
};

// Decodes a request line (without its newline) from an untrusted peer.
// With `secret` only the authenticated form is accepted, and its MAC is
// checked before anything else in the line is believed; without, only the
// plain form. Names are checked with valid_name(). Pure; any bytes allowed.
DecodedRequest decode_request(const auth::Secret* secret, const std::string& line);

// The request line (no newline) claiming (vm, epoch) for `claimant`: the
// authenticated form under `seq` when `secret` is non-null, else the plain form.
std::string encode_request(const auth::Secret* secret, const std::string& vm, uint64_t epoch,
                           const std::string& claimant, uint64_t seq);

// The reply line (no newline) carrying `grant` as the answer to
// `request_line`. With `secret` it is authenticated and bound to
// `request_line`, whose sequence number is `seq`.
std::string encode_reply(const auth::Secret* secret, const std::string& request_line, uint64_t seq,
                         const Grant& grant);

// Checks `reply_line` as the answer to `request_line` (made by encode_request
// with the same arguments). An `ERROR` reply, a reply for another request, a
// reply with a missing or bad MAC (when `secret` is set), or anything
// malformed is an error naming `peer`; never a grant. Pure; any bytes allowed.
Result<Grant> decode_reply(const auth::Secret* secret, const std::string& request_line,
                           const std::string& vm, uint64_t epoch, const std::string& claimant,
                           uint64_t seq, const std::string& reply_line, const std::string& peer);

// The request line asking for vm's latest grant (`LATEST <vm>[ <seq> <mac>]`).
std::string encode_latest_request(const auth::Secret* secret, const std::string& vm, uint64_t seq);
// Its reply: `LATEST <vm> <epoch> <holder>`, holder `-` when epoch is 0.
std::string encode_latest_reply(const auth::Secret* secret, const std::string& request_line,
                                uint64_t seq, const LatestGrant& latest);
// Checks `reply_line` as the answer to the LATEST `request_line`, as decode_reply.
Result<LatestGrant> decode_latest_reply(const auth::Secret* secret,
                                        const std::string& request_line, const std::string& vm,
                                        uint64_t seq, const std::string& reply_line,
                                        const std::string& peer);

namespace internal {
// The MAC of an authenticated request whose text before ` <mac>` is `body`.
std::string request_mac_hex(const auth::Secret& secret, const std::string& body);
// Whether `mac` authenticates a request whose text before ` <mac>` is `body`
// (constant time).
bool verify_request_mac(const auth::Secret& secret, const std::string& body, const auth::Mac& mac);
// The MAC of a reply whose text before ` <mac>` is `body`, answering `request_line`.
std::string reply_mac_hex(const auth::Secret& secret, const std::string& request_line,
                          const std::string& body);
// Decodes 64 hex digits (either case) into a MAC.
std::optional<auth::Mac> parse_mac_hex(const std::string& text);
// Parses a decimal u64 (1 to 20 digits, no sign).
std::optional<uint64_t> parse_u64(const std::string& text);
}  // namespace internal

}  // namespace ftvm::arbiter
