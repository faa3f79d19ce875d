// The etcd v3 arbiter backend: the (vm, epoch) test-and-set as one etcd
// transaction through etcd's JSON gateway over plain HTTP/1.1
// (docs/arbiter.md "etcd").
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "arbiter/arbiter_store.h"

#include "arbiter/client.h"
#include "arbiter/tcp.h"

namespace ftvm::arbiter {

// `endpoint` is etcd's client address; `url` names it in messages.
std::unique_ptr<Client> make_etcd_client(Endpoint endpoint, std::string url);

namespace internal {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// Parses an HTTP/1.1 response from the bytes `in` received so far; `closed`
// says the peer has closed the connection (so `in` is all there is, and a
// body without Content-Length or chunking ends there). Returns the response
// once complete, nullopt while more bytes are needed, or an error naming
// `peer` when the bytes cannot be a response. Pure; any bytes allowed.
Result<std::optional<HttpResponse>> parse_http_response(const std::string& in, bool closed,
                                                        const std::string& peer);

// One HTTP/1.1 request (`method` `path`, with a JSON `body` unless empty) on
// a fresh connection, answered by `deadline`. Content-Length and chunked
// bodies are understood. Errors name `peer`.
Result<HttpResponse> http_request(const Endpoint& ep, const std::string& method,
                                  const std::string& path, const std::string& body,
                                  Clock::time_point deadline, const std::string& peer,
                                  std::chrono::milliseconds timeout);

std::string base64_encode(const std::string& in);
std::optional<std::string> base64_decode(const std::string& in);

// The keys holding the grant of (vm, epoch) and the vm's latest grant.
std::string etcd_grant_key(const std::string& vm, uint64_t epoch);
std::string etcd_latest_key(const std::string& vm);

// The value under a latest key, `<epoch:020> <holder>`, decoded; nullopt
// when malformed.
std::optional<LatestGrant> parse_latest_value(const std::string& vm, const std::string& value);

// What a claim transaction's response says (docs/arbiter.md "etcd"): whether
// it succeeded and, when not, the values of the grant key and of the latest
// key its failure branch read (nullopt: no such key).
struct TxnOutcome {
  bool succeeded = false;
  std::optional<std::string> grant_holder;
  std::optional<std::string> latest_value;
};

// Decodes etcd's answer to a claim transaction (POST /v3/kv/txn) or to a
// read of one key (POST /v3/kv/range): errors for a non-200 status (with
// etcd's message) and for anything not shaped as etcd answers. Pure; any
// bytes allowed.
Result<TxnOutcome> parse_txn_response(const HttpResponse& response);
Result<std::optional<std::string>> parse_range_response(const HttpResponse& response);

}  // namespace internal
}  // namespace ftvm::arbiter
