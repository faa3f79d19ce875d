// SBI calls (see sbi.h). Register use per the SBI specification: a7 holds
// the extension ID, a6 the function ID, a0-a5 the arguments; a0 returns the
// error code and a1 the value. Legacy extensions return their result in a0.
#include "vm/sbi.h"

#include <vector>

#include "vm/hart.h"

namespace ftvm::vm {
namespace {

constexpr uint64_t kExtBase = 0x10;
constexpr uint64_t kExtTime = 0x54494d45;
constexpr uint64_t kExtIpi = 0x735049;
constexpr uint64_t kExtRfence = 0x52464e43;
constexpr uint64_t kExtHsm = 0x48534d;
constexpr uint64_t kExtSrst = 0x53525354;
constexpr uint64_t kExtDbcn = 0x4442434e;
constexpr uint64_t kLegacySetTimer = 0x00, kLegacyPutchar = 0x01, kLegacyGetchar = 0x02;
constexpr uint64_t kLegacyClearIpi = 0x03, kLegacySendIpi = 0x04, kLegacyShutdown = 0x08;

constexpr uint64_t kSpecVersion = 2ull << 24;  // SBI 2.0
constexpr uint64_t kA0 = 10, kA1 = 11, kA2 = 12, kA6 = 16, kA7 = 17;

bool hart0_in_mask(uint64_t mask, uint64_t base) {
  if (base == ~0ull) return true;  // all harts
  return base == 0 && (mask & 1);
}

}  // namespace

bool handle_sbi_call(Hart& hart, SbiPlatform& platform) {
  auto& x = hart.state().x;
  const uint64_t ext = x[kA7];
  const uint64_t fid = x[kA6];
  int64_t error = kSbiSuccess;
  uint64_t value = 0;
  auto legacy_return = [&](uint64_t v) { x[kA0] = v; };

  switch (ext) {
    case kLegacySetTimer:
      platform.sbi_set_timer(x[kA0]);
      legacy_return(0);
      return true;
    case kLegacyPutchar:
      platform.sbi_console_write(static_cast<uint8_t>(x[kA0]));
      legacy_return(0);
      return true;
    case kLegacyGetchar:
      legacy_return(~0ull);  // console input arrives through the UART only
      return true;
    case kLegacyClearIpi:
      hart.set_mip_bit(kSsi, false);
      legacy_return(0);
      return true;
    case kLegacySendIpi:
      hart.set_mip_bit(kSsi, true);
      hart.request_exit();
      legacy_return(0);
      return true;
    case 0x05: case 0x06: case 0x07:  // legacy remote fences
      hart.flush_tlb();
      legacy_return(0);
      return true;
    case kLegacyShutdown:
      platform.sbi_system_reset(SbiPlatform::ResetType::kShutdown, 0);
      legacy_return(0);
      return true;
    case kExtBase:
      switch (fid) {
        case 0: value = kSpecVersion; break;
        case 1: value = kSbiImplId; break;
        case 2: value = 1; break;
        case 3: {
          const uint64_t probe = x[kA0];
          value = (probe == kExtBase || probe == kExtTime || probe == kExtIpi ||
                   probe == kExtRfence || probe == kExtHsm || probe == kExtSrst ||
                   probe == kExtDbcn || probe <= kLegacyShutdown)
                      ? 1
                      : 0;
          break;
        }
        case 4: case 5: case 6: value = 0; break;  // mvendorid, marchid, mimpid
        default: error = kSbiErrNotSupported;
      }
      break;
    case kExtTime:
      if (fid == 0) {
        platform.sbi_set_timer(x[kA0]);
      } else {
        error = kSbiErrNotSupported;
      }
      break;
    case kExtIpi:
      if (fid == 0) {
        if (hart0_in_mask(x[kA0], x[kA1])) {
          hart.set_mip_bit(kSsi, true);
          hart.request_exit();
        }
      } else {
        error = kSbiErrNotSupported;
      }
      break;
    case kExtRfence:
      if (fid <= 6) {
        hart.flush_tlb();
      } else {
        error = kSbiErrNotSupported;
      }
      break;
    case kExtHsm:
      switch (fid) {
        case 0:  // hart_start
          error = x[kA0] == 0 ? kSbiErrAlreadyAvailable : kSbiErrInvalidParam;
          break;
        case 1: error = kSbiErrFailed; break;  // hart_stop: the only hart stays up
        case 2:  // hart_get_status
          if (x[kA0] == 0) {
            value = 0;  // STARTED
          } else {
            error = kSbiErrInvalidParam;
          }
          break;
        default: error = kSbiErrNotSupported;
      }
      break;
    case kExtSrst:
      if (fid == 0 && x[kA0] <= 2 && x[kA1] <= 1) {
        platform.sbi_system_reset(static_cast<SbiPlatform::ResetType>(x[kA0]),
                                  static_cast<uint32_t>(x[kA1]));
      } else {
        error = kSbiErrInvalidParam;
      }
      break;
    case kExtDbcn:
      switch (fid) {
        case 0: {  // console_write(num_bytes, base_lo, base_hi)
          const uint64_t n = x[kA0];
          const uint64_t base = x[kA1];
          if (x[kA2] != 0 || n > (1u << 20)) {
            error = kSbiErrInvalidParam;
            break;
          }
          std::vector<uint8_t> buf(n);
          if (!hart.read_phys(base, buf.data(), n)) {
            error = kSbiErrInvalidAddress;
            break;
          }
          for (uint8_t b : buf) platform.sbi_console_write(b);
          value = n;
          break;
        }
        case 1: value = 0; break;  // console_read: input comes through the UART
        case 2: platform.sbi_console_write(static_cast<uint8_t>(x[kA0])); break;
        default: error = kSbiErrNotSupported;
      }
      break;
    default:
      error = kSbiErrNotSupported;
  }
  x[kA0] = static_cast<uint64_t>(error);
  x[kA1] = value;
  return true;
}

}  // namespace ftvm::vm
