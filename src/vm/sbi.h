// The Supervisor Binary Interface, implemented by the machine itself.
//
// ftvm has no M-mode firmware when it boots Linux: the hart starts in S-mode
// and every ECALL from S-mode is answered here, between two instructions,
// as a pure function of machine state. This keeps the boot path short (no
// firmware round trips for timers and console) and keeps every effect of an
// SBI call inside the deterministic machine. Implemented: Base, TIME, IPI,
// RFENCE, HSM, SRST, DBCN and the legacy extensions 0x00-0x08.
#pragma once

#include <cstdint>

namespace ftvm::vm {

class Hart;

// What the SBI needs from the machine around it.
class SbiPlatform {
 public:
  virtual ~SbiPlatform() = default;
  virtual void sbi_set_timer(uint64_t stime_value) = 0;
  virtual void sbi_console_write(uint8_t byte) = 0;
  enum class ResetType : uint32_t { kShutdown = 0, kColdReboot = 1, kWarmReboot = 2 };
  virtual void sbi_system_reset(ResetType type, uint32_t reason) = 0;
};

inline constexpr int64_t kSbiSuccess = 0;
inline constexpr int64_t kSbiErrFailed = -1;
inline constexpr int64_t kSbiErrNotSupported = -2;
inline constexpr int64_t kSbiErrInvalidParam = -3;
inline constexpr int64_t kSbiErrInvalidAddress = -5;
inline constexpr int64_t kSbiErrAlreadyAvailable = -6;

// The SBI implementation ID ftvm reports ("FTVM").
inline constexpr uint64_t kSbiImplId = 0x4654564d;

// Handles the ECALL in the hart's a0-a7 and writes the results to a0/a1.
// Always returns true: unknown extensions answer SBI_ERR_NOT_SUPPORTED.
bool handle_sbi_call(Hart& hart, SbiPlatform& platform);

}  // namespace ftvm::vm
