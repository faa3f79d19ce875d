// libFuzzer target for the embedded arbiter's wire format: the server's
// request decoder and the client's reply decoders (protocol.h), on bytes
// from anyone who can reach the port.
//
// The first input byte picks the form (bit 0: authenticated, under a fixed
// secret) and, when authenticated, whether the rest gets a correct MAC
// appended (bit 1) -- otherwise the MAC check would keep the fuzzer out of
// everything behind it. Beyond "no crash, no sanitizer report" it checks:
// a decoded request has valid names and re-encodes to a line that decodes
// to the same request; a decoded reply never grants another claimant or
// names an epoch below the claimed one. Built with FTVM_FUZZ=ON; run by
// scripts/fuzz-smoke.sh.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "arbiter/protocol.h"

namespace ftvm::arbiter {
namespace {

const auth::Secret& fuzz_secret() {
  static const auth::Secret s = auth::Secret::from_bytes(std::vector<uint8_t>(32, 0x5a));
  return s;
}

void check_request(const auth::Secret* secret, const std::string& line) {
  const DecodedRequest d = decode_request(secret, line);
  if (!d.request) {
    FTVM_CHECK(!d.error.empty());
    return;
  }
  const Request& r = *d.request;
  FTVM_CHECK(valid_name(r.vm));
  std::string again;
  if (r.kind == RequestKind::kClaim) {
    FTVM_CHECK(valid_name(r.claimant));
    again = encode_request(secret, r.vm, r.epoch, r.claimant, r.seq);
  } else {
    again = encode_latest_request(secret, r.vm, r.seq);
  }
  const DecodedRequest e = decode_request(secret, again);
  FTVM_CHECK(e.request.has_value());
  FTVM_CHECK(e.request->kind == r.kind && e.request->vm == r.vm && e.request->epoch == r.epoch &&
             e.request->claimant == r.claimant && e.request->seq == r.seq);
}

void check_replies(const auth::Secret* secret, const std::string& line) {
  constexpr uint64_t kSeq = 77, kEpoch = 4;
  const std::string me = "host-a#0123456789abcdef";
  const std::string claim = encode_request(secret, "vm1", kEpoch, me, kSeq);
  Result<Grant> g = decode_reply(secret, claim, "vm1", kEpoch, me, kSeq, line, "fuzz");
  if (g) {
    FTVM_CHECK(g->vm_id == "vm1" && g->epoch == kEpoch);
    FTVM_CHECK(g->held_epoch >= kEpoch);
    FTVM_CHECK(!g->won || (g->holder == me && g->held_epoch == kEpoch));
    FTVM_CHECK(g->won || !(g->holder == me && g->held_epoch == kEpoch));
  }
  const std::string ask = encode_latest_request(secret, "vm1", kSeq);
  Result<LatestGrant> l = decode_latest_reply(secret, ask, "vm1", kSeq, line, "fuzz");
  if (l) {
    FTVM_CHECK(l->vm_id == "vm1");
    FTVM_CHECK((l->epoch == 0) == l->holder.empty());
  }
}

}  // namespace
}  // namespace ftvm::arbiter

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftvm::arbiter;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string line(reinterpret_cast<const char*>(data + 1), size - 1);
  const ftvm::auth::Secret* secret = (mode & 1) ? &fuzz_secret() : nullptr;
  if (secret != nullptr && (mode & 2)) {
    // As if signed by a peer holding the secret: as a request, and as a
    // reply to the claim and to the LATEST request check_replies makes.
    check_request(secret, line + " " + internal::request_mac_hex(*secret, line));
    const std::string me = "host-a#0123456789abcdef";
    for (const std::string& req : {encode_request(secret, "vm1", 4, me, 77),
                                   encode_latest_request(secret, "vm1", 77)}) {
      const std::string body = line + " 77";
      const std::string reply = body + " " + internal::reply_mac_hex(*secret, req, body);
      check_replies(secret, reply);
    }
    return 0;
  }
  check_request(secret, line);
  check_replies(secret, line);
  return 0;
}
