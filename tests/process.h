// Runs a real process for integration tests: arguments, a deadline, captured
// stdout and stderr, and the exit status. A process that outlives its
// deadline is killed (with its process group) and reported as timed out.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ftvm::test {

struct ProcessResult {
  int exit_code = -1;  // exit status, or 128+signal if killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Where `ftvm run` finds the default guest image, as it does:
// $FTVM_GUEST_DIR, else ${FTVM_CACHE:-/var/cache/ftvm}/guest/current.
std::string guest_dir();

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::seconds deadline,
                          const std::string& stdin_data = "");

}  // namespace ftvm::test
