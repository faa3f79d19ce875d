// The guest LAN's network namespaces (see scripts/netns.sh and
// docs/networking.md): making sure a LAN is up, and moving this process
// into one of its namespaces before opening the guest's TAP there.
#pragma once

#include <string>

#include "util/result.h"

namespace ftvm::hostio {

// The guest's address on a LAN made by scripts/netns.sh.
inline constexpr const char* kLanGuestAddress = "10.77.0.15";
inline constexpr const char* kLanGuestCidr = "10.77.0.15/24";

// Path of scripts/netns.sh: $FTVM_NETNS_SCRIPT, else found next to the
// running binary (build/ftvm -> scripts/netns.sh).
std::string netns_script();

// Path of scripts/FILE of the source tree the running binary was built in
// (found by walking up from the binary); "scripts/FILE" if none is found.
std::string project_script(const std::string& file);

// Brings up LAN `name` with scripts/netns.sh unless NAME-host exists.
Status ensure_lan(const std::string& name);

// Moves the calling process into network namespace `ns` (/run/netns/ns).
Status enter_netns(const std::string& ns);

}  // namespace ftvm::hostio
