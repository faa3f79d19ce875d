// Buggify-style fault points for the deterministic simulator (issue 8).
//
// Protocol code marks a place where an unusual but legal thing may happen
// (a message is delayed, a batch is split, a timer fires early) with
//
//     if (FTVM_BUGGIFY(0.05)) { ...do the unusual thing... }
//
// In every production build FTVM_BUGGIFY(p) is the constant `false`: the
// branch compiles away and no code path depends on the simulator. Only a
// build that defines FTVM_SIM_BUGGIFY (the simulator's copy of the protocol
// libraries, see src/sim/CMakeLists.txt `ftvm_sim_buggify()`) evaluates it,
// and then it asks the simulator's seeded source on this thread: false
// unless a simulated world has installed one (set_source) and that source
// enabled the point. Each site is enabled or not once per run (by its
// name), then fires with probability p each time it is reached, so a seed
// exercises a few fault points hard rather than all of them rarely.
#pragma once

#ifdef FTVM_SIM_BUGGIFY

namespace ftvm::buggify {

// Decides whether the fault point `site` ("file.cc:line") fires now with
// probability `p`. Implemented by the simulator.
using Source = bool (*)(void* context, const char* site, double p);

struct Installed {
  Source source = nullptr;
  void* context = nullptr;
};
inline thread_local Installed installed;

inline void set_source(Source source, void* context) { installed = {source, context}; }
inline bool fire(const char* site, double p) {
  return installed.source != nullptr && installed.source(installed.context, site, p);
}

}  // namespace ftvm::buggify

#define FTVM_BUGGIFY_STR2(x) #x
#define FTVM_BUGGIFY_STR(x) FTVM_BUGGIFY_STR2(x)
#define FTVM_BUGGIFY(p) (::ftvm::buggify::fire(__FILE_NAME__ ":" FTVM_BUGGIFY_STR(__LINE__), (p)))

#else

#define FTVM_BUGGIFY(p) false

#endif
