// libFuzzer target for the state transfer's messages (transfer.h): units,
// the final state and the backup's replies. Beyond "no crash, no sanitizer
// report", decoding must be canonical: whatever decodes re-encodes to
// exactly the bytes it came from. Built with FTVM_FUZZ=ON; run by
// scripts/fuzz-smoke.sh.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "ft/transfer.h"
#include "util/result.h"

namespace ftvm::ft {
namespace {

bool same_bytes(const std::string& encoded, std::span<const uint8_t> original) {
  return encoded.size() == original.size() &&
         std::memcmp(encoded.data(), original.data(), original.size()) == 0;
}

void fuzz(std::span<const uint8_t> in) {
  Result<TransferKind> kind = transfer_kind(in);
  FTVM_CHECK(kind.ok() || kind.error().starts_with("transfer message: "));
  if (Result<TransferUnits> u = decode_transfer_units(in); u) {
    FTVM_CHECK(u->index.size() == u->zero.size() && u->index.size() <= kMaxUnitsPerMessage);
    FTVM_CHECK(same_bytes(encode_transfer_units(*u), in));
  } else {
    FTVM_CHECK(u.error().starts_with("transfer units: "));
  }
  if (Result<TransferFinal> f = decode_transfer_final(in); f) {
    FTVM_CHECK(f->state.hart.instret == f->instret);
    Result<std::string> again = encode_transfer_final(*f);
    FTVM_CHECK(again.ok());
    FTVM_CHECK(same_bytes(*again, in));
  } else {
    FTVM_CHECK(f.error().starts_with("transfer final: "));
  }
  if (Result<TransferReply> r = decode_transfer_reply(in); r) {
    FTVM_CHECK(same_bytes(encode_transfer_reply(*r), in));
  } else {
    FTVM_CHECK(r.error().starts_with("transfer reply: "));
  }
}

}  // namespace
}  // namespace ftvm::ft

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ftvm::ft::fuzz({data, size});
  return 0;
}
