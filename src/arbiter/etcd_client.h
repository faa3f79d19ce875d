// The etcd v3 arbiter backend: the (vm, epoch) test-and-set as one etcd
// transaction through etcd's JSON gateway over plain HTTP/1.1
// (docs/arbiter.md "etcd").
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

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

}  // namespace internal
}  // namespace ftvm::arbiter
