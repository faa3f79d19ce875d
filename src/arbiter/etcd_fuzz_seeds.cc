// Writes the seed corpus of ftvm_arbiter_etcd_fuzz into the directory given
// as the only argument: responses as etcd 3.4's JSON gateway sends them
// (a won and a lost transaction, a range with and without a key, an error),
// framed by Content-Length, chunked, and by closing; each prefixed by the
// mode byte the fuzzer reads first (etcd_fuzz.cc).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "arbiter/etcd_client.h"

int main(int argc, char** argv) {
  using ftvm::arbiter::internal::base64_encode;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string latest = base64_encode("00000000000000000002 host-b#0123456789abcdef");
  const std::string holder = base64_encode("host-b#0123456789abcdef");
  const std::vector<std::string> bodies = {
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"5"}}},{"response_put":{"header":{"revision":"5"}}}]})",
      fmt::format(
          R"({{"header":{{"revision":"5"}},"responses":[{{"response_range":{{"header":{{"revision":"5"}},"kvs":[{{"key":"Zm9v","create_revision":"4","mod_revision":"4","version":"1","value":"{}"}}],"count":"1"}}}},{{"response_range":{{"header":{{"revision":"5"}},"kvs":[{{"key":"YmFy","value":"{}"}}],"count":"1"}}}}]}})",
          holder, latest),
      R"({"header":{"revision":"5"},"responses":[{"response_range":{"header":{"revision":"5"}}},{"response_range":{"header":{"revision":"5"}}}]})",
      fmt::format(R"({{"header":{{"revision":"5"}},"kvs":[{{"key":"YmFy","value":"{}"}}],"count":"1"}})",
                  latest),
      R"({"header":{"revision":"5"}})",
      R"({"error":"etcdserver: request timed out","code":14,"message":"etcdserver: request timed out"})",
  };
  std::vector<std::string> seeds;
  for (const std::string& b : bodies) {
    seeds.push_back("\0" + fmt::format("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       "Content-Length: {}\r\n\r\n{}",
                                       b.size(), b));
    seeds.back()[0] = '\0';
    std::string chunked = fmt::format(
        "\1HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n", b.size(), b);
    seeds.push_back(chunked);
    seeds.push_back("\1HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\n\r\n" + b);
    seeds.push_back("\0" + b);
    seeds.back()[0] = '\0';
  }
  seeds.push_back(std::string(1, '\0') + "00000000000000000002 host-b#0123456789abcdef");
  seeds.push_back(std::string(1, '\0') + latest);
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream(std::string(argv[1]) + "/seed-" + std::to_string(i), std::ios::binary)
        << seeds[i];
  }
  return 0;
}
