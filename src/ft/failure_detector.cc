// Failure detection: see failure_detector.h.
#include "ft/failure_detector.h"

#include <fmt/format.h>

namespace ftvm::ft {

void FailureDetector::progress(Time now, const Progress& p) {
  if (!have_progress_ || p.instret != instret_ || !p.should_run || !should_run_) since_ = now;
  have_progress_ = true;
  instret_ = p.instret;
  should_run_ = p.should_run;
}

void FailureDetector::reset(Time now) {
  heard_ = now;
  since_ = now;
}

std::chrono::nanoseconds FailureDetector::stuck_for(Time now) const {
  if (!have_progress_ || !should_run_) return std::chrono::nanoseconds(0);
  return now - since_;
}

std::optional<std::string> FailureDetector::verdict(Time now, const char* peer) const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (now - heard_ > timeout_) {
    return fmt::format("the {} has been silent for {} ms", peer,
                       duration_cast<milliseconds>(now - heard_).count());
  }
  if (stuck_for(now) > timeout_) {
    return fmt::format("the {}'s guest has not advanced past instret {} for {} ms while it should run",
                       peer, instret_, duration_cast<milliseconds>(stuck_for(now)).count());
  }
  return std::nullopt;
}

}  // namespace ftvm::ft
