// `ftvm replay`: re-execute a recorded run and prove it identical.
#include <fmt/format.h>

#include "cli/run_command.h"
#include "ft/record_replay.h"

namespace ftvm::cli {

int replay_command(const ReplayCommandOptions& o) {
  ft::ReplayOptions options;
  options.kernel_path = o.kernel;
  options.initrd_path = o.initrd;
  options.disk_path = o.disk;
  options.from_snapshot = o.from;
  options.engine = o.engine;
  Result<ft::ReplayReport> r = ft::replay(o.log, options);
  if (!r) {
    fmt::print(stderr, "ftvm: replay refused: {}\n", r.error());
    return kExitBadInput;
  }
  if (!r->ok) {
    fmt::print(stderr, "ftvm: replay DIVERGED at instret {} after {} records: {}\n", r->instret,
               r->records, r->divergence);
    return kExitDiverged;
  }
  fmt::print("ftvm: replay OK: {} records, {} checkpoints matched, {} instructions, guest exit "
             "status {}\n",
             r->records, r->checkpoints, r->instret, r->exit_status);
  return 0;
}

}  // namespace ftvm::cli
