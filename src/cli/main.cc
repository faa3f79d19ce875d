// The `ftvm` command line. Subcommands parse their options here and call
// into the pieces; only main decides the exit code.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "arbiter/server.h"
#include "auth/secret.h"
#include "cli/pair_command.h"
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

// --engine on a command that runs a machine; parsed by parse_engine_option.
void add_engine_option(CLI::App* cmd, std::string& engine) {
  cmd->add_option("--engine", engine,
                  fmt::format("How the machine executes: interp or jit (default {}; jit needs an "
                              "x86-64 host). Both give identical results",
                              ftvm::vm::engine_name(ftvm::vm::default_engine())));
}

// Empty text: the default engine. Prints why and returns false when the
// engine is unknown or cannot run on this host.
bool parse_engine_option(const std::string& text, ftvm::vm::Engine& out) {
  ftvm::Result<ftvm::vm::Engine> e = ftvm::cli::engine_from_option(text);
  if (!e) {
    fmt::print(stderr, "ftvm: {}\n", e.error());
    return false;
  }
  out = *e;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ftvm: fault-tolerant virtual machines on a deterministic RISC-V machine"};
  app.require_subcommand(1);

  ftvm::cli::RunOptions run;
  std::string memory = "256";
  std::string run_entropy = "host";
  CLI::App* run_cmd = app.add_subcommand("run", "Boot the guest (or a bare-metal ELF) and run it");
  std::string run_engine, replay_engine;
  add_engine_option(run_cmd, run_engine);
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
  run_cmd->add_option("--entropy", run_entropy,
                      "The guest's randomness (device-tree rng-seed and virtio-rng): host "
                      "(getrandom; every run differs; --record logs it), none, or seed:N (the same "
                      "on every run)")
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
  add_engine_option(replay_cmd, replay_engine);
  replay_cmd->add_option("--kernel", replay.kernel, "Kernel to use instead of the one the log names");
  replay_cmd->add_option("--initrd", replay.initrd, "initrd to use instead of the one the log names");
  replay_cmd->add_option("--disk", replay.disk, "Disk image to use instead of the one the log names");
  replay_cmd->add_option("--from", replay.from,
                         "Start from a snapshot taken during the recording (run --record with "
                         "--snapshot-at) instead of booting");
  replay_cmd->footer("Exit status: 0 when the replay matches the recording; 2 when the log or an "
                     "image cannot be used\n(corrupt, wrong version, content hash mismatch); 3 at "
                     "the first divergence.");

  std::string arbiter_listen, arbiter_data, arbiter_secret;
  bool arbiter_init = false;
  CLI::App* arbiter_cmd = app.add_subcommand(
      "arbiter", "Serve the arbiter: grant each (vm, epoch) to exactly one claimant, durably");
  arbiter_cmd->add_option("--listen", arbiter_listen, "IPv4 ADDR:PORT to listen on")->required();
  arbiter_cmd->add_option("--data", arbiter_data, "Directory holding the grant file")->required();
  arbiter_cmd->add_flag("--init", arbiter_init,
                        "Make a new, empty store in --data (an error if one exists there)");
  arbiter_cmd->add_option("--secret", arbiter_secret,
                          "Shared secret file: every request must carry its HMAC (docs/arbiter.md)");

  ftvm::cli::NodeCli primary, backup;
  CLI::App* primary_cmd = app.add_subcommand(
      "primary", "Run the guest live as the primary of an FT pair, streaming its log to the backup");
  ftvm::cli::add_node_options(primary_cmd, primary, /*primary=*/true);
  add_engine_option(primary_cmd, primary.engine);
  CLI::App* backup_cmd = app.add_subcommand(
      "backup", "Replay the primary's log as its backup; take over when the primary fails");
  ftvm::cli::add_node_options(backup_cmd, backup, /*primary=*/false);
  add_engine_option(backup_cmd, backup.engine);

  ftvm::cli::UpOptions up;
  CLI::App* up_cmd = app.add_subcommand(
      "up", "Start a whole FT pair on this machine in network namespaces: arbiter, primary, "
            "backup, LAN, client; Redis in the guest");
  up_cmd->add_option("--name", up.name, "The pair's name (namespaces NAME-*, run dir)")
      ->capture_default_str();
  up_cmd->add_option("--arbiter", up.arbiter, "ftvm (the embedded arbiter) or etcd")
      ->capture_default_str();
  up_cmd->add_option("--memory", up.memory, "Guest RAM in MiB")->capture_default_str();
  add_engine_option(up_cmd, up.engine);
  up_cmd->add_option("--engine-b", up.engine_b,
                     "Host b's engine, when it differs from --engine (a pair may mix them)");
  up_cmd->add_option("--heartbeat-ms", up.heartbeat_ms, "Heartbeat interval")->capture_default_str();
  up_cmd->add_option("--timeout-ms", up.timeout_ms, "Silence that counts as failure")
      ->capture_default_str();
  up_cmd->add_option("--max-lag-ms", up.max_lag_ms, "Backup lag bound in guest ms")
      ->capture_default_str();
  up_cmd->add_option("--hash-interval", up.hash_interval, "Instructions between state-hash checks")
      ->capture_default_str();
  up_cmd->add_option("--ready-timeout", up.ready_timeout_s, "Seconds to wait for Redis")
      ->capture_default_str();
  up_cmd->add_option("--append", up.append, "Extra kernel command-line words");
  up_cmd->add_option("--entropy", up.entropy,
                     "The guest's randomness: host (logged to the backup) or none")
      ->capture_default_str();
  up_cmd->add_flag("--fresh", up.fresh,
                   "Start from new copies of the guest image's data disk (the arbiter's grants "
                   "and the pair's history are kept: the epoch still grows)");
  up_cmd->add_option("--transfer-mbps", up.transfer_mbps,
                     "Rate limit of a new backup's state transfer, MB/s (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  up_cmd->add_flag("--no-reprotect", up.no_reprotect,
                   "Do not start a new backup after a failure (the survivor runs alone)");
  std::string pair_name = "ft";
  std::string supervise_dir;
  CLI::App* supervise_cmd = app.add_subcommand(
      "supervise", "Keep a pair made by `ftvm up` protected: start a new backup on a failed host "
                   "(started by `ftvm up`, stopped by `ftvm down`)");
  supervise_cmd->add_option("--name", pair_name, "The pair's name")->capture_default_str();
  supervise_cmd->add_option("--run-dir", supervise_dir, "The pair's run directory")->required();
  bool status_json = false;
  CLI::App* status_cmd = app.add_subcommand("status", "Show an FT pair: roles, epoch, instret, lag, "
                                                      "log bandwidth, held outputs, last failover");
  status_cmd->add_option("--name", pair_name, "The pair's name")->capture_default_str();
  status_cmd->add_flag("--json", status_json, "Print the nodes' status documents as JSON");
  std::string kill_which, kill_signal = "KILL";
  CLI::App* kill_cmd = app.add_subcommand("kill", "Inject a failure: signal the node that is now "
                                                  "primary or backup (or the arbiter)");
  kill_cmd->add_option("which", kill_which, "primary, backup, arbiter, or a host: a or b")->required();
  kill_cmd->add_option("--name", pair_name, "The pair's name")->capture_default_str();
  kill_cmd->add_option("--signal", kill_signal, "KILL, TERM, STOP or CONT")->capture_default_str();
  int migrate_timeout_s = 120;
  CLI::App* migrate_cmd = app.add_subcommand(
      "migrate", "Move the primary to the backup's host (planned: no failure timeout, no lost "
                 "write); the old host rejoins as the new backup");
  migrate_cmd->add_option("--name", pair_name, "The pair's name")->capture_default_str();
  migrate_cmd->add_option("--timeout", migrate_timeout_s,
                          "Seconds to wait for the pair to be protected again")
      ->capture_default_str();
  CLI::App* down_cmd = app.add_subcommand("down", "Stop an FT pair and remove its namespaces");
  down_cmd->add_option("--name", pair_name, "The pair's name")->capture_default_str();
  arbiter_cmd->footer("Runs until SIGINT or SIGTERM. Exit status: 0 after a signal; 2 when the "
                      "address or the data directory cannot be used (no store there without "
                      "--init, a store there with --init, a corrupt grant file).");

  try {
    app.parse(argc, argv);
    run.memory_mib = parse_size_mib(memory);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ftvm: bad --memory '{}'\n", memory);
    return ftvm::cli::kExitBadInput;
  }
  if (run_cmd->parsed()) {
    ftvm::Result<ftvm::hostio::EntropyChoice> entropy =
        ftvm::hostio::parse_entropy_choice(run_entropy);
    if (!entropy) {
      fmt::print(stderr, "ftvm: {}\n", entropy.error());
      return ftvm::cli::kExitBadInput;
    }
    run.entropy = *entropy;
    if (!parse_engine_option(run_engine, run.engine)) return ftvm::cli::kExitBadInput;
    return ftvm::cli::run_command(run);
  }
  if (replay_cmd->parsed()) {
    if (!parse_engine_option(replay_engine, replay.engine)) return ftvm::cli::kExitBadInput;
    return ftvm::cli::replay_command(replay);
  }
  if (primary_cmd->parsed()) return ftvm::cli::node_command(primary, true);
  if (backup_cmd->parsed()) return ftvm::cli::node_command(backup, false);
  if (up_cmd->parsed()) return ftvm::cli::up_command(up);
  if (down_cmd->parsed()) return ftvm::cli::down_command(pair_name);
  if (supervise_cmd->parsed()) return ftvm::cli::supervise_command(pair_name, supervise_dir);
  if (migrate_cmd->parsed()) return ftvm::cli::migrate_command(pair_name, migrate_timeout_s);
  if (status_cmd->parsed()) return ftvm::cli::status_command(pair_name, status_json);
  if (kill_cmd->parsed()) return ftvm::cli::kill_command(pair_name, kill_which, kill_signal);
  if (arbiter_cmd->parsed()) {
    std::optional<ftvm::auth::Secret> secret;
    if (!arbiter_secret.empty()) {
      ftvm::Result<ftvm::auth::Secret> loaded = ftvm::auth::Secret::load(arbiter_secret);
      if (!loaded) {
        fmt::print(stderr, "ftvm arbiter: {}\n", loaded.error());
        return ftvm::cli::kExitBadInput;
      }
      secret.emplace(std::move(*loaded));
    }
    if (ftvm::Status s = ftvm::arbiter::serve(arbiter_listen, arbiter_data,
                                              secret ? &*secret : nullptr, arbiter_init);
        !s) {
      fmt::print(stderr, "ftvm arbiter: {}\n", s.error());
      return ftvm::cli::kExitBadInput;
    }
    return 0;
  }
  return 0;
}
