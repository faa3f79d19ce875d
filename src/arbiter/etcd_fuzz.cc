// libFuzzer target for the etcd client's parsing of what etcd sends back
// (etcd_client.h): the HTTP/1.1 response framing (Content-Length, chunked,
// close-delimited), the JSON of a transaction and of a range response, the
// value under a latest key, and base64.
//
// The first input byte picks what the rest is fed to first (the others see
// it too): framing, or a 200 body. Beyond "no crash, no sanitizer report"
// it checks that a complete response's body is no longer than the input,
// that whatever base64 decodes re-encodes and decodes to the same bytes, and
// that a decoded latest value is a real grant. Built with FTVM_FUZZ=ON; run
// by scripts/fuzz-smoke.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "arbiter/etcd_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftvm::arbiter;
  using namespace ftvm::arbiter::internal;
  if (size == 0) return 0;
  const std::string in(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool closed = data[0] & 1;
  auto r = parse_http_response(in, closed, "fuzz");
  if (r && *r) {
    FTVM_CHECK((*r)->body.size() <= in.size());
    FTVM_CHECK((*r)->status >= 0 && (*r)->status <= 999);
    (void)parse_txn_response(**r);
    (void)parse_range_response(**r);
  }
  if (!r) FTVM_CHECK(!r.error().empty());
  if (!closed && r && !*r) {
    // Incomplete now: the same bytes with the connection closed are decided.
    auto c = parse_http_response(in, true, "fuzz");
    FTVM_CHECK(!c || *c);
  }
  for (int status : {200, 404, 500}) {
    HttpResponse body{status, in};
    auto t = parse_txn_response(body);
    if (t) {
      FTVM_CHECK(status == 200);
      FTVM_CHECK(!t->succeeded || (!t->grant_holder && !t->latest_value));
    }
    auto v = parse_range_response(body);
    if (v) FTVM_CHECK(status == 200);
  }
  if (auto l = parse_latest_value("vm1", in)) {
    FTVM_CHECK(l->epoch > 0 && valid_name(l->holder) && l->vm_id == "vm1");
  }
  if (auto d = base64_decode(in)) {
    const std::string e = base64_encode(*d);
    FTVM_CHECK(base64_decode(e) == *d);
  }
  FTVM_CHECK(base64_decode(base64_encode(in)) == in);
  return 0;
}
