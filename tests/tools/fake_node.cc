// ftvm-fake-node: a stand-in for an FT node in the tests of `ftvm kill`. It
// is started with a node's words (`primary` or `backup`, `--control PATH`),
// serves a status document on that control socket as a node does (role,
// state, epoch and pid), and waits to be signalled -- for at most 120 s, so
// a test that fails never leaves it behind for long.
//
// Usage: ftvm-fake-node primary|backup --control PATH --role R --state S
//                       --epoch N [--pid P]   (P: the pid to claim; default its own)
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "ft/status.h"

int main(int argc, char** argv) {
  std::string control, role, state;
  uint64_t epoch = 0;
  int64_t pid = getpid();
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--control") control = value;
    else if (flag == "--role") role = value;
    else if (flag == "--state") state = value;
    else if (flag == "--epoch") epoch = std::strtoull(value.c_str(), nullptr, 10);
    else if (flag == "--pid") pid = std::strtoll(value.c_str(), nullptr, 10);
  }
  if (argc < 2 || control.empty()) {
    std::fprintf(stderr, "usage: ftvm-fake-node primary|backup --control PATH --role R --state S "
                         "--epoch N [--pid P]\n");
    return 2;
  }
  ftvm::ft::StatusBoard board;
  board.publish({{"role", role}, {"state", state}, {"epoch", epoch}, {"pid", pid}});
  auto server = ftvm::ft::ControlServer::start(control, &board);
  if (!server) {
    std::fprintf(stderr, "ftvm-fake-node: %s\n", server.error().c_str());
    return 2;
  }
  pollfd none{-1, 0, 0};
  poll(&none, 0, 120'000);  // the most it lives; the tests signal it long before
  return 0;
}
