// RISC-V F and D arithmetic in software.
//
// Every operation is computed with integer arithmetic only: no host
// floating-point instruction runs here, so results and flags are the same on
// every host and the host's floating-point environment is neither read nor
// written. The structure is the classic one (as in Berkeley SoftFloat): unpack
// the operands, handle NaN, infinity and zero, operate on integer
// significands, then round and pack once. binary32 and binary64 share the code
// through the Format traits (F32, F64).
//
// The rounding convention used throughout: round_pack() receives a significand
// `sig` whose leading one is at bit 62, with everything below the target
// precision (the round bits) underneath and the bits shifted out ORed into bit
// 0 ("jammed", i.e. sticky). The value is sig / 2^62 * 2^(exp + 1 - bias):
// `exp` is the biased exponent minus one, so that the leading one carries into
// the exponent field when the result is packed.
#include "vm/fpu.h"

#include <bit>
#include <cstdint>

#include "util/result.h"

namespace ftvm::vm::fpu {
namespace {

using U128 = unsigned __int128;

struct F32 {
  using Bits = uint32_t;
  static constexpr int kFracBits = 23;
  static constexpr int kExpMax = 0xff;
  static constexpr int kBias = 127;
  static constexpr Bits kCanonicalNan = 0x7fc00000;
};

struct F64 {
  using Bits = uint64_t;
  static constexpr int kFracBits = 52;
  static constexpr int kExpMax = 0x7ff;
  static constexpr int kBias = 1023;
  static constexpr Bits kCanonicalNan = 0x7ff8000000000000;
};

template <class F>
constexpr int kWidth = sizeof(typename F::Bits) * 8;
template <class F>
constexpr uint64_t kHidden = uint64_t{1} << F::kFracBits;
// Number of bits below the target precision in a round_pack() significand.
template <class F>
constexpr int kRoundBits = 62 - F::kFracBits;

// ---------------------------------------------------------------------------
// Bit-level helpers.

// x >> n, with any one bits shifted out ORed into bit 0. n may be any count.
inline uint64_t shift_right_jam64(uint64_t x, uint32_t n) {
  if (n == 0) return x;
  if (n >= 64) return x != 0;
  return (x >> n) | ((x << (64 - n)) != 0);
}

inline U128 shift_right_jam128(U128 x, uint32_t n) {
  if (n == 0) return x;
  if (n >= 128) return x != 0;
  return (x >> n) | ((x << (128 - n)) != 0);
}

inline int clz128(U128 x) {
  const uint64_t hi = static_cast<uint64_t>(x >> 64);
  return hi ? std::countl_zero(hi) : 64 + std::countl_zero(static_cast<uint64_t>(x));
}

// Divides hi:lo by d. Precondition: hi < d (the quotient fits in 64 bits).
inline uint64_t div128(uint64_t hi, uint64_t lo, uint64_t d, uint64_t& rem) {
#if defined(__x86_64__)
  uint64_t q;
  uint64_t r;
  asm("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(d) : "cc");
  rem = r;
  return q;
#else
  const U128 n = (static_cast<U128>(hi) << 64) | lo;
  rem = static_cast<uint64_t>(n % d);
  return static_cast<uint64_t>(n / d);
#endif
}

// floor(sqrt(x)) for x in [2^54, 2^62), used as the seed table of isqrt64.
constexpr uint32_t isqrt_exact_constexpr(uint64_t x) {
  uint64_t lo = 0;
  uint64_t hi = uint64_t{1} << 31;  // sqrt(2^62)
  while (lo < hi) {
    const uint64_t mid = (lo + hi + 1) / 2;
    if (mid * mid <= x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return static_cast<uint32_t>(lo);
}

// kSqrtSeed[i] ~ sqrt((i + 0.5) * 2^54) for i in [64, 256): x in [2^60, 2^62)
// has x >> 54 in that range.
struct SqrtSeedTable {
  uint32_t v[256] = {};
  constexpr SqrtSeedTable() {
    for (uint64_t i = 64; i < 256; ++i) v[i] = isqrt_exact_constexpr((2 * i + 1) << 53);
  }
};
constexpr SqrtSeedTable kSqrtSeed;

// floor(sqrt(x)) for x in [2^60, 2^62).
inline uint64_t isqrt64(uint64_t x) {
  uint64_t r = kSqrtSeed.v[x >> 54];  // relative error below 2^-8
  r = (r + x / r) / 2;                // below 2^-16
  r = (r + x / r) / 2;                // below 2^-32: off by at most one or two
  while (r * r > x) --r;
  while ((r + 1) * (r + 1) <= x) ++r;
  return r;
}

// floor(sqrt(m)) for m in [2^124, 2^126).
inline uint64_t isqrt128(U128 m) {
  const uint64_t hi = static_cast<uint64_t>(m >> 64);
  // (s + 1) * 2^32 is above sqrt(m) by at most 2^32; one Newton step from
  // above lands within a few units of the root, from above.
  const uint64_t r0 = (isqrt64(hi) + 1) << 32;
  uint64_t rem;
  const uint64_t q = div128(hi, static_cast<uint64_t>(m), r0, rem);
  uint64_t r = static_cast<uint64_t>((static_cast<U128>(r0) + q) >> 1);
  while (static_cast<U128>(r) * r > m) --r;
  while (static_cast<U128>(r + 1) * (r + 1) <= m) ++r;
  return r;
}

template <class F>
inline bool sign_of(typename F::Bits a) {
  return a >> (kWidth<F> - 1);
}
template <class F>
inline int exp_of(typename F::Bits a) {
  return static_cast<int>((a >> F::kFracBits) & F::kExpMax);
}
template <class F>
inline uint64_t frac_of(typename F::Bits a) {
  return a & (kHidden<F> - 1);
}
template <class F>
inline typename F::Bits pack(bool sign, int exp, uint64_t sig) {
  using Bits = typename F::Bits;
  return (static_cast<Bits>(sign) << (kWidth<F> - 1)) +
         (static_cast<Bits>(exp) << F::kFracBits) + static_cast<Bits>(sig);
}
template <class F>
inline typename F::Bits inf(bool sign) {
  return pack<F>(sign, F::kExpMax, 0);
}
template <class F>
inline typename F::Bits zero(bool sign) {
  return pack<F>(sign, 0, 0);
}
template <class F>
inline bool is_nan(typename F::Bits a) {
  return (a & ~pack<F>(true, 0, 0)) > inf<F>(false);
}
template <class F>
inline bool is_snan(typename F::Bits a) {
  return is_nan<F>(a) && !(a & (kHidden<F> >> 1));
}
template <class F>
inline bool is_inf(typename F::Bits a) {
  return (a & ~pack<F>(true, 0, 0)) == inf<F>(false);
}
template <class F>
inline bool is_zero(typename F::Bits a) {
  return (a & ~pack<F>(true, 0, 0)) == 0;
}

// The result of an operation with a NaN operand: the canonical NaN, with NV
// when an operand is signaling.
template <class F>
inline typename F::Bits propagate_nan(typename F::Bits a, typename F::Bits b, uint32_t& flags) {
  if (is_snan<F>(a) || is_snan<F>(b)) flags |= kNv;
  return F::kCanonicalNan;
}

template <class F>
inline typename F::Bits invalid(uint32_t& flags) {
  flags |= kNv;
  return F::kCanonicalNan;
}

// A nonzero subnormal fraction, normalized: returns the significand with its
// leading one at bit kFracBits and sets `exp` to the matching biased exponent
// (which is below 1).
template <class F>
inline uint64_t normalize_subnormal(uint64_t frac, int& exp) {
  const int shift = std::countl_zero(frac) - (63 - F::kFracBits);
  exp = 1 - shift;
  return frac << shift;
}

// ---------------------------------------------------------------------------
// Rounding.

// The amount added to the round bits before they are cut off.
template <class F>
inline uint64_t round_increment(bool sign, uint32_t rm) {
  constexpr uint64_t kMask = (uint64_t{1} << kRoundBits<F>) - 1;
  switch (rm) {
    case kRne:
    case kRmm:
      return (kMask >> 1) + 1;
    case kRtz:
      return 0;
    case kRdn:
      return sign ? kMask : 0;
    case kRup:
      return sign ? 0 : kMask;
  }
  FTVM_CHECK(rm <= kRmm);
  return 0;
}

// Rounds sig / 2^62 * 2^(exp + 1 - bias) (see the file comment) to format F.
// Precondition: bit 62 of sig is set.
template <class F>
typename F::Bits round_pack(bool sign, int32_t exp, uint64_t sig, uint32_t rm, uint32_t& flags) {
  constexpr int kR = kRoundBits<F>;
  constexpr uint64_t kMask = (uint64_t{1} << kR) - 1;
  constexpr uint64_t kHalf = uint64_t{1} << (kR - 1);
  const uint64_t increment = round_increment<F>(sign, rm);
  uint64_t round_bits = sig & kMask;
  if (static_cast<uint32_t>(exp) >= static_cast<uint32_t>(F::kExpMax - 2)) {
    if (exp < 0) {
      // Tininess after rounding: the result is tiny unless rounding with an
      // unbounded exponent carries it up to the smallest normal number.
      const bool tiny = exp < -1 || sig + increment < (uint64_t{1} << 63);
      sig = shift_right_jam64(sig, static_cast<uint32_t>(-exp));
      exp = 0;
      round_bits = sig & kMask;
      if (tiny && round_bits) flags |= kUf;
    } else if (exp > F::kExpMax - 2 || sig + increment >= (uint64_t{1} << 63)) {
      flags |= kOf | kNx;
      // Infinity, or the largest finite number when rounding toward zero.
      return inf<F>(sign) - (increment == 0);
    }
  }
  sig = (sig + increment) >> kR;
  if (round_bits) flags |= kNx;
  if (rm == kRne && round_bits == kHalf) sig &= ~uint64_t{1};
  if (sig == 0) exp = 0;
  return pack<F>(sign, exp, sig);
}

// ---------------------------------------------------------------------------
// Addition and subtraction.

// sign * (|a| + |b|).
template <class F>
typename F::Bits add_mags(typename F::Bits a, typename F::Bits b, bool sign, uint32_t rm,
                          uint32_t& flags) {
  constexpr int kF = F::kFracBits;
  const int ea = exp_of<F>(a);
  const int eb = exp_of<F>(b);
  uint64_t sa = frac_of<F>(a);
  uint64_t sb = frac_of<F>(b);
  const int d = ea - eb;
  if (d == 0) {
    // Two subnormals add exactly; a carry out of the fraction becomes the
    // exponent of the smallest normal number.
    if (ea == 0) return pack<F>(sign, 0, sa + sb);
    if (ea == F::kExpMax) return (sa | sb) ? propagate_nan<F>(a, b, flags) : inf<F>(sign);
    return round_pack<F>(sign, ea, ((2 * kHidden<F>) + sa + sb) << (61 - kF), rm, flags);
  }
  // Significands with the hidden one at bit 61, leaving room for the carry.
  sa <<= 61 - kF;
  sb <<= 61 - kF;
  int ez;
  if (d < 0) {
    if (eb == F::kExpMax) return sb ? propagate_nan<F>(a, b, flags) : inf<F>(sign);
    ez = eb;
    // A subnormal's exponent is 1, not 0: pre-shift it by one to compensate.
    sa = ea ? sa | (uint64_t{1} << 61) : sa << 1;
    sa = shift_right_jam64(sa, static_cast<uint32_t>(-d));
    sb |= uint64_t{1} << 61;
  } else {
    if (ea == F::kExpMax) return sa ? propagate_nan<F>(a, b, flags) : inf<F>(sign);
    ez = ea;
    sb = eb ? sb | (uint64_t{1} << 61) : sb << 1;
    sb = shift_right_jam64(sb, static_cast<uint32_t>(d));
    sa |= uint64_t{1} << 61;
  }
  uint64_t sig = sa + sb;
  if (sig < (uint64_t{1} << 62)) {
    --ez;
    sig <<= 1;
  }
  return round_pack<F>(sign, ez, sig, rm, flags);
}

// sign * (|a| - |b|).
template <class F>
typename F::Bits sub_mags(typename F::Bits a, typename F::Bits b, bool sign, uint32_t rm,
                          uint32_t& flags) {
  constexpr int kF = F::kFracBits;
  const int ea = exp_of<F>(a);
  const int eb = exp_of<F>(b);
  uint64_t sa = frac_of<F>(a);
  uint64_t sb = frac_of<F>(b);
  const int d = ea - eb;
  if (d == 0) {
    if (ea == F::kExpMax) return (sa | sb) ? propagate_nan<F>(a, b, flags) : invalid<F>(flags);
    // Same exponent: the difference is exact.
    int64_t diff = static_cast<int64_t>(sa) - static_cast<int64_t>(sb);
    if (diff == 0) return zero<F>(rm == kRdn);
    const int e = ea ? ea - 1 : 0;
    if (diff < 0) {
      sign = !sign;
      diff = -diff;
    }
    int shift = std::countl_zero(static_cast<uint64_t>(diff)) - (63 - kF);
    int ez = e - shift;
    if (ez < 0) {
      shift = e;
      ez = 0;
    }
    return pack<F>(sign, ez, static_cast<uint64_t>(diff) << shift);
  }
  // Significands with the hidden one at bit 62.
  sa <<= 62 - kF;
  sb <<= 62 - kF;
  int ez;
  uint64_t sig;
  if (d < 0) {
    sign = !sign;
    if (eb == F::kExpMax) return sb ? propagate_nan<F>(a, b, flags) : inf<F>(sign);
    sa = ea ? sa | (uint64_t{1} << 62) : sa << 1;
    sa = shift_right_jam64(sa, static_cast<uint32_t>(-d));
    sb |= uint64_t{1} << 62;
    ez = eb;
    sig = sb - sa;
  } else {
    if (ea == F::kExpMax) return sa ? propagate_nan<F>(a, b, flags) : inf<F>(sign);
    sb = eb ? sb | (uint64_t{1} << 62) : sb << 1;
    sb = shift_right_jam64(sb, static_cast<uint32_t>(d));
    sa |= uint64_t{1} << 62;
    ez = ea;
    sig = sa - sb;
  }
  const int shift = std::countl_zero(sig) - 1;
  return round_pack<F>(sign, ez - 1 - shift, sig << shift, rm, flags);
}

template <class F>
typename F::Bits add(typename F::Bits a, typename F::Bits b, bool negate_b, uint32_t rm,
                     uint32_t& flags) {
  const bool sa = sign_of<F>(a);
  const bool sb = sign_of<F>(b) ^ negate_b;
  return sa == sb ? add_mags<F>(a, b, sa, rm, flags) : sub_mags<F>(a, b, sa, rm, flags);
}

// ---------------------------------------------------------------------------
// Multiplication, division, square root.

template <class F>
typename F::Bits mul(typename F::Bits a, typename F::Bits b, uint32_t rm, uint32_t& flags) {
  constexpr int kF = F::kFracBits;
  const bool sign = sign_of<F>(a) ^ sign_of<F>(b);
  int ea = exp_of<F>(a);
  int eb = exp_of<F>(b);
  uint64_t sa = frac_of<F>(a);
  uint64_t sb = frac_of<F>(b);
  if (ea == F::kExpMax || eb == F::kExpMax) {
    if (is_nan<F>(a) || is_nan<F>(b)) return propagate_nan<F>(a, b, flags);
    if (is_zero<F>(a) || is_zero<F>(b)) return invalid<F>(flags);
    return inf<F>(sign);
  }
  if (ea == 0) {
    if (sa == 0) return zero<F>(sign);
    sa = normalize_subnormal<F>(sa, ea);
  }
  if (eb == 0) {
    if (sb == 0) return zero<F>(sign);
    sb = normalize_subnormal<F>(sb, eb);
  }
  sa = (sa | kHidden<F>) << (62 - kF);  // leading one at bit 62
  sb = (sb | kHidden<F>) << (63 - kF);  // leading one at bit 63
  const U128 product = static_cast<U128>(sa) * sb;
  uint64_t sig = static_cast<uint64_t>(product >> 64) | (static_cast<uint64_t>(product) != 0);
  int ez = ea + eb - F::kBias;
  if (sig < (uint64_t{1} << 62)) {
    --ez;
    sig <<= 1;
  }
  return round_pack<F>(sign, ez, sig, rm, flags);
}

template <class F>
typename F::Bits div(typename F::Bits a, typename F::Bits b, uint32_t rm, uint32_t& flags) {
  const bool sign = sign_of<F>(a) ^ sign_of<F>(b);
  int ea = exp_of<F>(a);
  int eb = exp_of<F>(b);
  uint64_t sa = frac_of<F>(a);
  uint64_t sb = frac_of<F>(b);
  if (ea == F::kExpMax) {
    if (sa) return propagate_nan<F>(a, b, flags);
    if (eb == F::kExpMax) return sb ? propagate_nan<F>(a, b, flags) : invalid<F>(flags);
    return inf<F>(sign);
  }
  if (eb == F::kExpMax) return sb ? propagate_nan<F>(a, b, flags) : zero<F>(sign);
  if (eb == 0) {
    if (sb == 0) {
      if (ea == 0 && sa == 0) return invalid<F>(flags);
      flags |= kDz;
      return inf<F>(sign);
    }
    sb = normalize_subnormal<F>(sb, eb);
  }
  if (ea == 0) {
    if (sa == 0) return zero<F>(sign);
    sa = normalize_subnormal<F>(sa, ea);
  }
  sa |= kHidden<F>;
  sb |= kHidden<F>;
  // The quotient (sa << s) / sb lands in [2^62, 2^63).
  int ez = ea - eb + F::kBias - 1;
  int s = 62;
  if (sa < sb) {
    --ez;
    s = 63;
  }
  uint64_t sig;
  if constexpr (F::kFracBits < 32) {
    const uint64_t n = sa << (s - 32);
    sig = ((n / sb) << 32) | (n % sb != 0);
  } else {
    uint64_t rem;
    const uint64_t q = div128(sa >> (64 - s), sa << s, sb, rem);
    sig = q | (rem != 0);
  }
  return round_pack<F>(sign, ez, sig, rm, flags);
}

template <class F>
typename F::Bits sqrt(typename F::Bits a, uint32_t rm, uint32_t& flags) {
  constexpr int kF = F::kFracBits;
  const bool sign = sign_of<F>(a);
  int ea = exp_of<F>(a);
  uint64_t sa = frac_of<F>(a);
  if (ea == F::kExpMax) {
    if (sa) return propagate_nan<F>(a, a, flags);
    return sign ? invalid<F>(flags) : a;
  }
  if (ea == 0 && sa == 0) return a;  // sqrt(-0) is -0
  if (sign) return invalid<F>(flags);
  if (ea == 0) sa = normalize_subnormal<F>(sa, ea);
  sa |= kHidden<F>;
  int e = ea - F::kBias;
  if (e & 1) {  // make the exponent even
    sa <<= 1;
    --e;
  }
  // sa is in [2^kF, 2^(kF+2)); the root of sa * 2^(2s) has its leading one at
  // a fixed bit. sqrt never has a halfway result, and never under/overflows.
  uint64_t sig;
  if constexpr (F::kFracBits < 32) {
    const uint64_t m = sa << (60 - kF);  // [2^60, 2^62)
    const uint64_t r = isqrt64(m);       // [2^30, 2^31)
    sig = (r << 32) | (r * r != m);
  } else {
    const U128 m = static_cast<U128>(sa) << (124 - kF);  // [2^124, 2^126)
    const uint64_t r = isqrt128(m);                      // [2^62, 2^63)
    sig = r | (static_cast<U128>(r) * r != m);
  }
  return round_pack<F>(false, e / 2 + F::kBias - 1, sig, rm, flags);
}

// ---------------------------------------------------------------------------
// Fused multiply-add: (-1)^neg_product * a * b + (-1)^neg_c * c, one rounding.

template <class F>
typename F::Bits fma(typename F::Bits a, typename F::Bits b, typename F::Bits c, bool neg_product,
                     bool neg_c, uint32_t rm, uint32_t& flags) {
  using Bits = typename F::Bits;
  constexpr int kF = F::kFracBits;
  const bool sp = sign_of<F>(a) ^ sign_of<F>(b) ^ neg_product;
  const bool sc = sign_of<F>(c) ^ neg_c;
  const bool inf_times_zero =
      (is_inf<F>(a) && is_zero<F>(b)) || (is_zero<F>(a) && is_inf<F>(b));
  if (is_nan<F>(a) || is_nan<F>(b) || is_nan<F>(c)) {
    if (is_snan<F>(a) || is_snan<F>(b) || is_snan<F>(c)) flags |= kNv;
    // RISC-V requires NV for inf * 0 even when the addend is a quiet NaN.
    if (inf_times_zero) flags |= kNv;
    return F::kCanonicalNan;
  }
  if (inf_times_zero) return invalid<F>(flags);
  if (is_inf<F>(a) || is_inf<F>(b)) {
    if (is_inf<F>(c) && sc != sp) return invalid<F>(flags);
    return inf<F>(sp);
  }
  if (is_inf<F>(c)) return inf<F>(sc);
  if (is_zero<F>(a) || is_zero<F>(b)) {
    if (is_zero<F>(c)) return zero<F>(sp == sc ? sp : rm == kRdn);
    return c ^ (static_cast<Bits>(neg_c) << (kWidth<F> - 1));
  }

  int ea = exp_of<F>(a);
  int eb = exp_of<F>(b);
  uint64_t sa = frac_of<F>(a);
  uint64_t sb = frac_of<F>(b);
  if (ea == 0) sa = normalize_subnormal<F>(sa, ea);
  if (eb == 0) sb = normalize_subnormal<F>(sb, eb);
  sa = (sa | kHidden<F>) << (62 - kF);
  sb = (sb | kHidden<F>) << (62 - kF);
  // The exact product, normalized to [2^125, 2^126); its value is
  // p / 2^125 * 2^ep.
  U128 p = static_cast<U128>(sa) * sb;
  int ep = ea + eb - 2 * F::kBias;
  if (p >> 125) {
    ++ep;
  } else {
    p <<= 1;
  }
  if (is_zero<F>(c)) {
    const uint64_t sig = static_cast<uint64_t>(shift_right_jam128(p, 63));
    return round_pack<F>(sp, ep + F::kBias - 1, sig, rm, flags);
  }
  int ec = exp_of<F>(c);
  uint64_t fc = frac_of<F>(c);
  if (ec == 0) fc = normalize_subnormal<F>(fc, ec);
  // The addend in the same form, c / 2^125 * 2^ecu.
  const U128 cc = static_cast<U128>(fc | kHidden<F>) << (125 - kF);
  const int ecu = ec - F::kBias;
  const int d = ep - ecu;

  // Aligning the smaller operand jams what it shifts out into bit 0. Bits are
  // lost only when the exponents are far apart, and then the sum needs at most
  // a one-bit normalization, so the sticky bit stays far below the round bits.
  bool sign;
  int ez;
  U128 r;
  if (sp == sc) {
    sign = sp;
    if (d >= 0) {
      ez = ep;
      r = p + shift_right_jam128(cc, static_cast<uint32_t>(d));
    } else {
      ez = ecu;
      r = cc + shift_right_jam128(p, static_cast<uint32_t>(-d));
    }
    // r is in [2^125, 2^127).
    if (r >> 126) {
      ++ez;
      r = shift_right_jam128(r, 1);
    }
  } else {
    if (d > 0 || (d == 0 && p >= cc)) {
      if (d == 0 && p == cc) return zero<F>(rm == kRdn);
      sign = sp;
      ez = ep;
      r = p - shift_right_jam128(cc, static_cast<uint32_t>(d));
    } else {
      sign = sc;
      ez = ecu;
      r = cc - shift_right_jam128(p, static_cast<uint32_t>(-d));
    }
    // r is in (0, 2^126): bring its leading one to bit 125.
    const int shift = clz128(r) - 2;
    r <<= shift;
    ez -= shift;
  }
  const uint64_t sig = static_cast<uint64_t>(shift_right_jam128(r, 63));
  return round_pack<F>(sign, ez + F::kBias - 1, sig, rm, flags);
}

// ---------------------------------------------------------------------------
// Minimum, maximum, comparisons, classification.

// a < b for non-NaN operands, with -0 < +0.
template <class F>
inline bool total_less(typename F::Bits a, typename F::Bits b) {
  const bool sa = sign_of<F>(a);
  const bool sb = sign_of<F>(b);
  if (sa != sb) return sa;
  return sa ? a > b : a < b;
}

template <class F>
typename F::Bits min_max(typename F::Bits a, typename F::Bits b, bool want_max, uint32_t& flags) {
  if (is_snan<F>(a) || is_snan<F>(b)) flags |= kNv;
  const bool na = is_nan<F>(a);
  const bool nb = is_nan<F>(b);
  if (na && nb) return F::kCanonicalNan;
  if (na) return b;
  if (nb) return a;
  return total_less<F>(a, b) != want_max ? a : b;
}

template <class F>
bool eq(typename F::Bits a, typename F::Bits b, uint32_t& flags) {
  if (is_nan<F>(a) || is_nan<F>(b)) {
    if (is_snan<F>(a) || is_snan<F>(b)) flags |= kNv;
    return false;
  }
  return a == b || (is_zero<F>(a) && is_zero<F>(b));
}

template <class F>
bool lt(typename F::Bits a, typename F::Bits b, uint32_t& flags) {
  if (is_nan<F>(a) || is_nan<F>(b)) {
    flags |= kNv;
    return false;
  }
  if (is_zero<F>(a) && is_zero<F>(b)) return false;
  return total_less<F>(a, b);
}

template <class F>
bool le(typename F::Bits a, typename F::Bits b, uint32_t& flags) {
  if (is_nan<F>(a) || is_nan<F>(b)) {
    flags |= kNv;
    return false;
  }
  if (is_zero<F>(a) && is_zero<F>(b)) return true;
  return a == b || total_less<F>(a, b);
}

template <class F>
uint32_t classify(typename F::Bits a) {
  const bool sign = sign_of<F>(a);
  const int e = exp_of<F>(a);
  const uint64_t f = frac_of<F>(a);
  if (e == F::kExpMax) {
    if (f == 0) return sign ? 1u << 0 : 1u << 7;
    return is_snan<F>(a) ? 1u << 8 : 1u << 9;
  }
  if (e == 0) {
    if (f == 0) return sign ? 1u << 3 : 1u << 4;
    return sign ? 1u << 2 : 1u << 5;
  }
  return sign ? 1u << 1 : 1u << 6;
}

// ---------------------------------------------------------------------------
// Conversions.

// Converts to a `width`-bit signed or unsigned integer, saturating as RISC-V
// requires: NaN gives the largest positive value; a value that rounds outside
// the range is clamped to the nearest end and raises NV (and not NX). Returns
// the result as a two's-complement 64-bit pattern.
template <class F>
uint64_t to_int(typename F::Bits a, bool is_signed, int width, uint32_t rm, uint32_t& flags) {
  constexpr int kF = F::kFracBits;
  const bool neg = sign_of<F>(a);
  const uint64_t pos_max = is_signed ? (uint64_t{1} << (width - 1)) - 1 : ~uint64_t{0} >> (64 - width);
  const uint64_t neg_max = is_signed ? uint64_t{1} << (width - 1) : 0;  // largest negative magnitude
  if (is_nan<F>(a)) {
    flags |= kNv;
    return pos_max;
  }
  const int e = exp_of<F>(a);
  const uint64_t f = frac_of<F>(a);
  bool overflow = e == F::kExpMax;
  uint64_t mag = 0;
  bool inexact = false;
  if (!overflow) {
    const uint64_t sig = e ? f | kHidden<F> : f;
    const int exp2 = (e ? e : 1) - F::kBias - kF;  // |a| = sig * 2^exp2
    if (exp2 >= 0) {
      overflow = exp2 > 63 - kF;
      if (!overflow) mag = sig << exp2;
    } else {
      const int n = -exp2;
      uint64_t ip = 0;
      uint64_t rem = sig;
      bool above_half = false;
      bool at_half = false;
      if (n < 64) {
        ip = sig >> n;
        rem = sig & ((uint64_t{1} << n) - 1);
        const uint64_t half = uint64_t{1} << (n - 1);
        above_half = rem > half;
        at_half = rem == half;
      }  // else sig < 2^(kF+1) <= 2^(n-1): below half.
      bool up = false;
      switch (rm) {
        case kRne:
          up = above_half || (at_half && (ip & 1));
          break;
        case kRmm:
          up = above_half || at_half;
          break;
        case kRtz:
          break;
        case kRdn:
          up = neg && rem;
          break;
        case kRup:
          up = !neg && rem;
          break;
        default:
          FTVM_CHECK(rm <= kRmm);
      }
      mag = ip + up;
      inexact = rem != 0;
    }
  }
  if (overflow || mag > (neg ? neg_max : pos_max)) {
    flags |= kNv;
    return neg ? (is_signed ? 0 - neg_max : 0) : pos_max;
  }
  if (inexact) flags |= kNx;
  return neg ? 0 - mag : mag;
}

template <class F>
typename F::Bits from_int(bool neg, uint64_t mag, uint32_t rm, uint32_t& flags) {
  if (mag == 0) return zero<F>(false);
  const int lz = std::countl_zero(mag);
  const uint64_t sig = shift_right_jam64(mag << lz, 1);
  return round_pack<F>(neg, 63 - lz + F::kBias - 1, sig, rm, flags);
}

inline uint64_t sign_extend32(uint64_t x) {
  return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(x))));
}

}  // namespace

uint32_t add_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags) {
  return add<F32>(a, b, false, rm, flags);
}
uint32_t sub_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags) {
  return add<F32>(a, b, true, rm, flags);
}
uint32_t mul_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags) {
  return mul<F32>(a, b, rm, flags);
}
uint32_t div_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags) {
  return div<F32>(a, b, rm, flags);
}
uint32_t sqrt_s(uint32_t a, uint32_t rm, uint32_t& flags) { return sqrt<F32>(a, rm, flags); }
uint32_t fma_s(uint32_t a, uint32_t b, uint32_t c, bool neg_product, bool neg_c, uint32_t rm,
               uint32_t& flags) {
  return fma<F32>(a, b, c, neg_product, neg_c, rm, flags);
}
uint32_t min_s(uint32_t a, uint32_t b, uint32_t& flags) { return min_max<F32>(a, b, false, flags); }
uint32_t max_s(uint32_t a, uint32_t b, uint32_t& flags) { return min_max<F32>(a, b, true, flags); }
bool eq_s(uint32_t a, uint32_t b, uint32_t& flags) { return eq<F32>(a, b, flags); }
bool lt_s(uint32_t a, uint32_t b, uint32_t& flags) { return lt<F32>(a, b, flags); }
bool le_s(uint32_t a, uint32_t b, uint32_t& flags) { return le<F32>(a, b, flags); }
uint32_t classify_s(uint32_t a) { return classify<F32>(a); }

uint64_t add_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags) {
  return add<F64>(a, b, false, rm, flags);
}
uint64_t sub_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags) {
  return add<F64>(a, b, true, rm, flags);
}
uint64_t mul_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags) {
  return mul<F64>(a, b, rm, flags);
}
uint64_t div_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags) {
  return div<F64>(a, b, rm, flags);
}
uint64_t sqrt_d(uint64_t a, uint32_t rm, uint32_t& flags) { return sqrt<F64>(a, rm, flags); }
uint64_t fma_d(uint64_t a, uint64_t b, uint64_t c, bool neg_product, bool neg_c, uint32_t rm,
               uint32_t& flags) {
  return fma<F64>(a, b, c, neg_product, neg_c, rm, flags);
}
uint64_t min_d(uint64_t a, uint64_t b, uint32_t& flags) { return min_max<F64>(a, b, false, flags); }
uint64_t max_d(uint64_t a, uint64_t b, uint32_t& flags) { return min_max<F64>(a, b, true, flags); }
bool eq_d(uint64_t a, uint64_t b, uint32_t& flags) { return eq<F64>(a, b, flags); }
bool lt_d(uint64_t a, uint64_t b, uint32_t& flags) { return lt<F64>(a, b, flags); }
bool le_d(uint64_t a, uint64_t b, uint32_t& flags) { return le<F64>(a, b, flags); }
uint64_t classify_d(uint64_t a) { return classify<F64>(a); }

uint64_t cvt_w_s(uint32_t a, uint32_t rm, uint32_t& flags) {
  return sign_extend32(to_int<F32>(a, true, 32, rm, flags));
}
uint64_t cvt_wu_s(uint32_t a, uint32_t rm, uint32_t& flags) {
  return sign_extend32(to_int<F32>(a, false, 32, rm, flags));
}
uint64_t cvt_l_s(uint32_t a, uint32_t rm, uint32_t& flags) {
  return to_int<F32>(a, true, 64, rm, flags);
}
uint64_t cvt_lu_s(uint32_t a, uint32_t rm, uint32_t& flags) {
  return to_int<F32>(a, false, 64, rm, flags);
}
uint64_t cvt_w_d(uint64_t a, uint32_t rm, uint32_t& flags) {
  return sign_extend32(to_int<F64>(a, true, 32, rm, flags));
}
uint64_t cvt_wu_d(uint64_t a, uint32_t rm, uint32_t& flags) {
  return sign_extend32(to_int<F64>(a, false, 32, rm, flags));
}
uint64_t cvt_l_d(uint64_t a, uint32_t rm, uint32_t& flags) {
  return to_int<F64>(a, true, 64, rm, flags);
}
uint64_t cvt_lu_d(uint64_t a, uint32_t rm, uint32_t& flags) {
  return to_int<F64>(a, false, 64, rm, flags);
}

uint32_t cvt_s_w(int32_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F32>(a < 0, a < 0 ? 0 - static_cast<uint64_t>(a) : a, rm, flags);
}
uint32_t cvt_s_wu(uint32_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F32>(false, a, rm, flags);
}
uint32_t cvt_s_l(int64_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F32>(a < 0, a < 0 ? 0 - static_cast<uint64_t>(a) : a, rm, flags);
}
uint32_t cvt_s_lu(uint64_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F32>(false, a, rm, flags);
}
uint64_t cvt_d_w(int32_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F64>(a < 0, a < 0 ? 0 - static_cast<uint64_t>(a) : a, rm, flags);
}
uint64_t cvt_d_wu(uint32_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F64>(false, a, rm, flags);
}
uint64_t cvt_d_l(int64_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F64>(a < 0, a < 0 ? 0 - static_cast<uint64_t>(a) : a, rm, flags);
}
uint64_t cvt_d_lu(uint64_t a, uint32_t rm, uint32_t& flags) {
  return from_int<F64>(false, a, rm, flags);
}

uint32_t cvt_s_d(uint64_t a, uint32_t rm, uint32_t& flags) {
  const bool sign = sign_of<F64>(a);
  int e = exp_of<F64>(a);
  uint64_t f = frac_of<F64>(a);
  if (e == F64::kExpMax) {
    if (f == 0) return inf<F32>(sign);
    if (is_snan<F64>(a)) flags |= kNv;
    return F32::kCanonicalNan;
  }
  if (e == 0) {
    if (f == 0) return zero<F32>(sign);
    f = normalize_subnormal<F64>(f, e);
  }
  const uint64_t sig = (f | kHidden<F64>) << (62 - F64::kFracBits);
  return round_pack<F32>(sign, e - F64::kBias + F32::kBias - 1, sig, rm, flags);
}

uint64_t cvt_d_s(uint32_t a, uint32_t rm, uint32_t& flags) {
  const bool sign = sign_of<F32>(a);
  int e = exp_of<F32>(a);
  uint64_t f = frac_of<F32>(a);
  if (e == F32::kExpMax) {
    if (f == 0) return inf<F64>(sign);
    if (is_snan<F32>(a)) flags |= kNv;
    return F64::kCanonicalNan;
  }
  if (e == 0) {
    if (f == 0) return zero<F64>(sign);
    f = normalize_subnormal<F32>(f, e);
  }
  return pack<F64>(sign, e - F32::kBias + F64::kBias, (f & (kHidden<F32> - 1))
                                                         << (F64::kFracBits - F32::kFracBits));
}

}  // namespace ftvm::vm::fpu
