// The `ftvm` command line. Subcommands parse their options here and call
// into the pieces; only main decides the exit code.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "arbiter/server.h"
#include "cli/run_command.h"

namespace {

uint64_t parse_size_mib(const std::string& text) {
  // Accepts "512", "512M", "512MiB", "2G", "2GiB".
  size_t pos = 0;
  const unsigned long long n = std::stoull(text, &pos);
  std::string unit = text.substr(pos);
  if (unit.empty() || unit == "M" || unit == "MiB" || unit == "m") return n;
  if (unit == "G" || unit == "GiB" || unit == "g") return n * 1024;
  throw CLI::ValidationError("--memory", "unknown unit '" + unit + "' (use M or G)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ftvm: fault-tolerant virtual machines on a deterministic RISC-V machine"};
  app.require_subcommand(1);

  ftvm::cli::RunOptions run;
  std::string memory = "256";
  CLI::App* run_cmd = app.add_subcommand("run", "Boot the guest (or a bare-metal ELF) and run it");
  run_cmd->add_option("--kernel", run.kernel, "Linux Image to boot (default: the built guest image)");
  run_cmd->add_option("--initrd", run.initrd, "initramfs to load (default: the built guest image's)");
  run_cmd->add_option("--append", run.append, "Words to append to the kernel command line");
  run_cmd->add_option("--memory", memory, "Guest RAM, in MiB or with a unit (e.g. 512M, 1G)")
      ->capture_default_str();
  run_cmd->add_option("--max-instructions", run.max_instructions,
                      "Stop after this many instructions (exit status 124)");
  run_cmd->add_flag("--stats", run.stats,
                    "Print instructions, guest seconds, host seconds and MIPS at exit");
  run_cmd->add_flag("--state-hash", run.state_hash,
                    "Print the SHA-256 of the whole machine state at exit");
  run_cmd->add_option("--disk", run.disk, "Raw disk image attached as virtio-blk (vda in the guest)");
  run_cmd->add_flag("--disk-read-only", run.disk_read_only, "Attach --disk read-only");
  run_cmd->add_option("--entropy", run.entropy,
                      "virtio-rng source: none, host (getrandom; runs then differ), or seed:N "
                      "(deterministic)")
      ->capture_default_str();
  run_cmd->add_option("--record", run.record,
                      "Write the event log of this run to FILE (replay it with `ftvm replay`)");
  run_cmd->add_option("--hash-interval", run.hash_interval,
                      "With --record: instructions between logged state hashes (0: only at the end)")
      ->capture_default_str();
  run_cmd->add_option("--snapshot-at", run.snapshot_at,
                      "Save a snapshot of the machine when it has retired this many instructions, "
                      "then carry on");
  run_cmd->add_option("--snapshot-file", run.snapshot_file, "Where --snapshot-at saves it")
      ->capture_default_str();
  run_cmd->add_option("--restore", run.restore,
                      "Resume a snapshot instead of booting (give the same --disk, --entropy and "
                      "--net/--tap as when it was taken)");
  run_cmd->add_flag("--net", run.net,
                    "Attach a NIC to the guest LAN (network namespaces made by scripts/netns.sh; "
                    "created if missing) with the guest at 10.77.0.15");
  run_cmd->add_option("--lan", run.lan, "Name of the guest LAN for --net")->capture_default_str();
  run_cmd->add_option("--tap", run.tap, "Attach a NIC to this existing TAP device instead");
  run_cmd->add_option("--mac", run.mac, "The NIC's MAC address (default 52:54:00:77:00:0f)");
  run_cmd->add_option("--elf", run.elf,
                      "Run a bare-metal RISC-V ELF in M-mode (HTIF tohost and the test finisher "
                      "end it)");
  run_cmd->add_option("command", run.command,
                      "Command to run in the guest after --; ftvm exits with its status");
  run_cmd->footer(
      "Interactive console: press Ctrl-A then X to quit (Ctrl-A Ctrl-A sends Ctrl-A).\n"
      "Exit status: the guest's own status; 2 for unusable input, 124 when --max-instructions\n"
      "is reached, 125 when the machine cannot continue.");

  ftvm::cli::ReplayCommandOptions replay;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay", "Re-execute a recorded run with no outside input and check every hash");
  replay_cmd->add_option("log", replay.log, "Event log written by `ftvm run --record`")->required();
  replay_cmd->add_option("--kernel", replay.kernel, "Kernel to use instead of the one the log names");
  replay_cmd->add_option("--initrd", replay.initrd, "initrd to use instead of the one the log names");
  replay_cmd->add_option("--disk", replay.disk, "Disk image to use instead of the one the log names");
  replay_cmd->add_option("--from", replay.from,
                         "Start from a snapshot taken during the recording (run --record with "
                         "--snapshot-at) instead of booting");
  replay_cmd->footer("Exit status: 0 when the replay matches the recording; 2 when the log or an "
                     "image cannot be used\n(corrupt, wrong version, content hash mismatch); 3 at "
                     "the first divergence.");

  std::string arbiter_listen, arbiter_data;
  CLI::App* arbiter_cmd = app.add_subcommand(
      "arbiter", "Serve the arbiter: grant each (vm, epoch) to exactly one claimant, durably");
  arbiter_cmd->add_option("--listen", arbiter_listen, "IPv4 ADDR:PORT to listen on")->required();
  arbiter_cmd->add_option("--data", arbiter_data, "Directory holding the grant file")->required();
  arbiter_cmd->footer("Runs until SIGINT or SIGTERM. Exit status: 0 after a signal; 2 when the "
                      "address or the data directory cannot be used (e.g. a corrupt grant file).");

  try {
    app.parse(argc, argv);
    run.memory_mib = parse_size_mib(memory);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ftvm: bad --memory '{}'\n", memory);
    return ftvm::cli::kExitBadInput;
  }
  if (run_cmd->parsed()) return ftvm::cli::run_command(run);
  if (replay_cmd->parsed()) return ftvm::cli::replay_command(replay);
  if (arbiter_cmd->parsed()) {
    if (ftvm::Status s = ftvm::arbiter::serve(arbiter_listen, arbiter_data); !s) {
      fmt::print(stderr, "ftvm arbiter: {}\n", s.error());
      return ftvm::cli::kExitBadInput;
    }
    return 0;
  }
  return 0;
}
