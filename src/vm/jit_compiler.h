// The translator's internals (see jit.h): the code buffer and the block
// compiler. Private to the vm library: only hart.cc and jit.cc include it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>

#include "vm/hart.h"

namespace ftvm::vm {

class JitCompiler {
 public:
  explicit JitCompiler(Hart& hart);
  ~JitCompiler();
  JitCompiler(const JitCompiler&) = delete;
  JitCompiler& operator=(const JitCompiler&) = delete;

  // Translates the block starting at `pc` (on `page`, the fetch page of pc)
  // and records it in the page's slot table. Returns the block's entry, or
  // Hart::kJitNone when the first instruction is the interpreter's. May drop
  // every block first when the buffer is full.
  const void* compile(Hart::CodePage& page, uint64_t pc);

  // Runs generated code from `entry` until a block exits.
  void enter(JitContext& ctx, const void* entry) const { enter_(&ctx, entry); }

  // Points the rel32 of a jump at `site` (a block's exit, JitContext::patch)
  // at `entry`.
  void patch(uint8_t* site, const void* entry);
  // The interpreter ran `n` instructions between blocks (JitStats::interpreted).
  void count_interpreted(uint64_t n) { stats_.interpreted += n; }
  // How many times the buffer has been flushed.
  uint64_t flushes() const { return stats_.flushes; }

  // Forgets every block; the slot tables must be cleared by the caller.
  void reset();
  JitStats stats() const;

 private:
  class Emitter;
  Hart& hart_;
  std::unique_ptr<Emitter> emitter_;
  void (*enter_)(JitContext*, const void*) = nullptr;
  JitStats stats_;
  // With FTVM_JIT_PERF_MAP set: /tmp/perf-<pid>.map, one line per block
  // (host address, size, guest pc), which `perf report` reads to name
  // translated code.
  std::FILE* perf_map_ = nullptr;
};

}  // namespace ftvm::vm
