// Guest LAN namespaces (see netns.h).
#include "hostio/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace ftvm::hostio {

std::string netns_script() {
  if (const char* s = std::getenv("FTVM_NETNS_SCRIPT"); s != nullptr && *s) return s;
  return project_script("netns.sh");
}

std::string project_script(const std::string& file) {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (std::filesystem::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    const std::filesystem::path candidate = dir / "scripts" / file;
    if (std::filesystem::exists(candidate, ec)) return candidate.string();
  }
  return "scripts/" + file;
}

Status ensure_lan(const std::string& name) {
  if (access(("/run/netns/" + name + "-host").c_str(), F_OK) == 0) return {};
  const std::string script = netns_script();
  const pid_t pid = fork();
  if (pid < 0) return make_error(fmt::format("cannot start {}: {}", script, std::strerror(errno)));
  if (pid == 0) {
    // Its how-to text goes to our stderr: stdout belongs to the guest console.
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execl("/bin/bash", "bash", script.c_str(), "up", name.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error(fmt::format("{} up {} failed (exit {}); see its message above", script,
                                  name, WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return {};
}

Status enter_netns(const std::string& ns) {
  const std::string path = "/run/netns/" + ns;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(fmt::format("network namespace {} not found ({}): {}", ns, path,
                                  std::strerror(errno)));
  }
  const int r = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (r != 0) {
    return make_error(fmt::format("cannot enter network namespace {}: {} (ftvm needs root)", ns,
                                  std::strerror(err)));
  }
  return {};
}

}  // namespace ftvm::hostio
