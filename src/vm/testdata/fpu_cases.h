/* The operation table and operand generator behind fpu_golden.bin.
 *
 * Shared, as plain C, by the bare-metal RISC-V program that produces the
 * golden results under QEMU (fpu_golden_gen.c) and by fpu_test.cc, which
 * regenerates the same operands and compares ftvm's FPU with the recorded
 * results. Any change here changes the operands: regenerate the golden file
 * with gen_fpu_golden.sh afterwards.
 *
 * Operands come from splitmix64 with a fixed seed per (operation, rounding
 * mode) block, biased toward edge values: zeros, infinities, quiet and
 * signaling NaNs, subnormals, the overflow and underflow thresholds, values
 * around the integer conversion limits, halfway cases, and pairs of operands
 * whose exponents are close (alignment, cancellation, ties).
 *
 * fpu_golden.bin format (all integers little-endian):
 *   "FTVMFPU1"                      8-byte magic
 *   u32 block_count
 *   then block_count blocks, in the order fpu_golden_gen.c runs them:
 *     u8 op (enum FpuOp), u8 rm (0..4), u16 zero, u32 n
 *     n records: the result (fpu_result_size(op) bytes: 4 for a single,
 *     8 for a double or an integer register, 1 for a comparison, 2 for a
 *     class mask) then one byte of fflags.
 */
#ifndef FTVM_VM_TESTDATA_FPU_CASES_H_
#define FTVM_VM_TESTDATA_FPU_CASES_H_

#include <stdint.h>

/* Operand and result kinds. */
enum FpuKind {
  FPU_KIND_S,  /* binary32 bits */
  FPU_KIND_D,  /* binary64 bits */
  FPU_KIND_W,  /* int32 */
  FPU_KIND_WU, /* uint32 */
  FPU_KIND_L,  /* int64 */
  FPU_KIND_LU, /* uint64 */
  FPU_KIND_X,  /* an integer register result (64 bits) */
  FPU_KIND_B,  /* a comparison result (0 or 1) */
  FPU_KIND_C   /* an fclass mask */
};

#define FPU_OPS(X)                         \
  X(FADD_S, 2, 1, FPU_KIND_S, FPU_KIND_S)  \
  X(FSUB_S, 2, 1, FPU_KIND_S, FPU_KIND_S)  \
  X(FMUL_S, 2, 1, FPU_KIND_S, FPU_KIND_S)  \
  X(FDIV_S, 2, 1, FPU_KIND_S, FPU_KIND_S)  \
  X(FSQRT_S, 1, 1, FPU_KIND_S, FPU_KIND_S) \
  X(FMADD_S, 3, 1, FPU_KIND_S, FPU_KIND_S) \
  X(FMSUB_S, 3, 1, FPU_KIND_S, FPU_KIND_S) \
  X(FNMSUB_S, 3, 1, FPU_KIND_S, FPU_KIND_S) \
  X(FNMADD_S, 3, 1, FPU_KIND_S, FPU_KIND_S) \
  X(FMIN_S, 2, 0, FPU_KIND_S, FPU_KIND_S)  \
  X(FMAX_S, 2, 0, FPU_KIND_S, FPU_KIND_S)  \
  X(FEQ_S, 2, 0, FPU_KIND_S, FPU_KIND_B)   \
  X(FLT_S, 2, 0, FPU_KIND_S, FPU_KIND_B)   \
  X(FLE_S, 2, 0, FPU_KIND_S, FPU_KIND_B)   \
  X(FCLASS_S, 1, 0, FPU_KIND_S, FPU_KIND_C) \
  X(FADD_D, 2, 1, FPU_KIND_D, FPU_KIND_D)  \
  X(FSUB_D, 2, 1, FPU_KIND_D, FPU_KIND_D)  \
  X(FMUL_D, 2, 1, FPU_KIND_D, FPU_KIND_D)  \
  X(FDIV_D, 2, 1, FPU_KIND_D, FPU_KIND_D)  \
  X(FSQRT_D, 1, 1, FPU_KIND_D, FPU_KIND_D) \
  X(FMADD_D, 3, 1, FPU_KIND_D, FPU_KIND_D) \
  X(FMSUB_D, 3, 1, FPU_KIND_D, FPU_KIND_D) \
  X(FNMSUB_D, 3, 1, FPU_KIND_D, FPU_KIND_D) \
  X(FNMADD_D, 3, 1, FPU_KIND_D, FPU_KIND_D) \
  X(FMIN_D, 2, 0, FPU_KIND_D, FPU_KIND_D)  \
  X(FMAX_D, 2, 0, FPU_KIND_D, FPU_KIND_D)  \
  X(FEQ_D, 2, 0, FPU_KIND_D, FPU_KIND_B)   \
  X(FLT_D, 2, 0, FPU_KIND_D, FPU_KIND_B)   \
  X(FLE_D, 2, 0, FPU_KIND_D, FPU_KIND_B)   \
  X(FCLASS_D, 1, 0, FPU_KIND_D, FPU_KIND_C) \
  X(FCVT_W_S, 1, 1, FPU_KIND_S, FPU_KIND_X) \
  X(FCVT_WU_S, 1, 1, FPU_KIND_S, FPU_KIND_X) \
  X(FCVT_L_S, 1, 1, FPU_KIND_S, FPU_KIND_X) \
  X(FCVT_LU_S, 1, 1, FPU_KIND_S, FPU_KIND_X) \
  X(FCVT_W_D, 1, 1, FPU_KIND_D, FPU_KIND_X) \
  X(FCVT_WU_D, 1, 1, FPU_KIND_D, FPU_KIND_X) \
  X(FCVT_L_D, 1, 1, FPU_KIND_D, FPU_KIND_X) \
  X(FCVT_LU_D, 1, 1, FPU_KIND_D, FPU_KIND_X) \
  X(FCVT_S_W, 1, 1, FPU_KIND_W, FPU_KIND_S) \
  X(FCVT_S_WU, 1, 1, FPU_KIND_WU, FPU_KIND_S) \
  X(FCVT_S_L, 1, 1, FPU_KIND_L, FPU_KIND_S) \
  X(FCVT_S_LU, 1, 1, FPU_KIND_LU, FPU_KIND_S) \
  X(FCVT_D_W, 1, 0, FPU_KIND_W, FPU_KIND_D) \
  X(FCVT_D_WU, 1, 0, FPU_KIND_WU, FPU_KIND_D) \
  X(FCVT_D_L, 1, 1, FPU_KIND_L, FPU_KIND_D) \
  X(FCVT_D_LU, 1, 1, FPU_KIND_LU, FPU_KIND_D) \
  X(FCVT_S_D, 1, 1, FPU_KIND_D, FPU_KIND_S) \
  X(FCVT_D_S, 1, 0, FPU_KIND_S, FPU_KIND_D)

enum FpuOp {
#define FPU_OP_ENUM(name, arity, rounds, in, out) FPU_OP_##name,
  FPU_OPS(FPU_OP_ENUM)
#undef FPU_OP_ENUM
  FPU_OP_COUNT
};

struct FpuOpInfo {
  const char* name;
  int arity;
  int rounds; /* 1: run under all five rounding modes; 0: under RNE only */
  enum FpuKind in;
  enum FpuKind out;
};

static const struct FpuOpInfo kFpuOpInfo[FPU_OP_COUNT] = {
#define FPU_OP_INFO(name, arity, rounds, in, out) {#name, arity, rounds, in, out},
    FPU_OPS(FPU_OP_INFO)
#undef FPU_OP_INFO
};

/* Cases per block: a rounding operation gets this many per mode. */
#define FPU_CASES_PER_MODE 512
#define FPU_CASES_UNROUNDED (5 * FPU_CASES_PER_MODE)

static inline int fpu_block_cases(int op) {
  return kFpuOpInfo[op].rounds ? FPU_CASES_PER_MODE : FPU_CASES_UNROUNDED;
}

static inline int fpu_result_size(int op) {
  switch (kFpuOpInfo[op].out) {
    case FPU_KIND_S: return 4;
    case FPU_KIND_B: return 1;
    case FPU_KIND_C: return 2;
    default: return 8;
  }
}

/* splitmix64. */
struct FpuRng {
  uint64_t state;
};

static inline uint64_t fpu_rng_next(struct FpuRng* r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline struct FpuRng fpu_block_rng(int op, int rm) {
  struct FpuRng r;
  r.state = 0x5eed0f9a1ull * (uint64_t)(op * 8 + rm + 1) ^ 0x243f6a8885a308d3ull;
  fpu_rng_next(&r);
  return r;
}

/* Uniform in [0, n) for small n (the bias does not matter here). */
static inline uint64_t fpu_rng_below(struct FpuRng* r, uint64_t n) { return fpu_rng_next(r) % n; }

struct FpuFormat {
  int frac_bits;
  int exp_max;
  int bias;
  int width;
};

static const struct FpuFormat kFpuF32 = {23, 0xff, 127, 32};
static const struct FpuFormat kFpuF64 = {52, 0x7ff, 1023, 64};

static inline uint64_t fpu_pack(const struct FpuFormat* f, uint64_t sign, int64_t exp,
                                uint64_t frac) {
  const uint64_t frac_mask = (1ull << f->frac_bits) - 1;
  if (exp < 0) exp = 0;
  if (exp > f->exp_max) exp = f->exp_max;
  return (sign << (f->width - 1)) | ((uint64_t)exp << f->frac_bits) | (frac & frac_mask);
}

static inline int fpu_exp_of(const struct FpuFormat* f, uint64_t bits) {
  return (int)((bits >> f->frac_bits) & (uint64_t)f->exp_max);
}

/* A fraction: uniform, with its low bits cleared (short, so results are
 * often exact or halfway), sparse, all ones, zero, or all ones minus a little. */
static inline uint64_t fpu_case_frac(struct FpuRng* r, const struct FpuFormat* f) {
  const uint64_t mask = (1ull << f->frac_bits) - 1;
  const uint64_t x = fpu_rng_next(r);
  switch (fpu_rng_below(r, 8)) {
    case 0:
    case 1:
      return x & mask;
    case 2:
    case 3:
      return x & mask & ~((1ull << fpu_rng_below(r, (uint64_t)f->frac_bits + 1)) - 1);
    case 4:
      return ((1ull << (x % (uint64_t)f->frac_bits)) |
              (1ull << ((x >> 8) % (uint64_t)f->frac_bits))) & mask;
    case 5: /* all ones, or the single top bit (1.5: times an odd significand, often a tie) */
      return (x & 1) ? mask : 1ull << (f->frac_bits - 1);
    case 6:
      return 0;
    default:
      return mask - (x & 15);
  }
}

/* A floating-point value, biased toward edge cases. Every random draw is its
 * own statement: the order in which C evaluates arguments is unspecified, and
 * the RISC-V and host compilers must draw in the same order. */
static inline uint64_t fpu_case_float(struct FpuRng* r, const struct FpuFormat* f) {
  const uint64_t sign = fpu_rng_next(r) & 1;
  const uint64_t quiet = 1ull << (f->frac_bits - 1);
  const int64_t bias = f->bias;
  const uint64_t kind = fpu_rng_below(r, 16);
  const uint64_t pick = fpu_rng_below(r, 12);
  const uint64_t frac = fpu_case_frac(r, f);
  const uint64_t low = fpu_rng_next(r);
  switch (kind) {
    case 0:
      switch (pick % 8) {
        case 0: return fpu_pack(f, sign, 0, 0);                                /* zero */
        case 1: return fpu_pack(f, sign, f->exp_max, 0);                       /* inf */
        case 2: return fpu_pack(f, sign, f->exp_max, quiet);                   /* qNaN */
        case 3: return fpu_pack(f, sign, f->exp_max, quiet | frac);            /* qNaN */
        case 4: return fpu_pack(f, sign, f->exp_max, (frac & ~quiet) | 1);     /* sNaN */
        case 5: return fpu_pack(f, sign, 0, 1);                                /* min subnormal */
        case 6: return fpu_pack(f, sign, f->exp_max - 1, ~0ull);               /* max finite */
        default: return fpu_pack(f, sign, bias, 0);                            /* one */
      }
    case 1:
    case 2: /* subnormal */
      return fpu_pack(f, sign, 0, frac | (low & 1));
    case 3: /* near overflow */
      return fpu_pack(f, sign, f->exp_max - 1 - (int64_t)(pick % 3), frac);
    case 4: /* near underflow */
      return fpu_pack(f, sign, 1 + (int64_t)(pick % 3), frac);
    case 5:
    case 6: { /* integers, halves and quarters: ties for conversions */
      const int keep = (int)pick + 1 + (int)(low & 1); /* integer bits, then one or two more */
      return fpu_pack(f, sign, bias - 1 + (int64_t)pick, frac & ~((1ull << (f->frac_bits - keep)) - 1));
    }
    case 7: { /* around the 32- and 64-bit integer limits */
      static const int kLimits[] = {30, 31, 32, 62, 63, 64};
      return fpu_pack(f, sign, bias + kLimits[pick % 6] - (int64_t)(low & 1), frac);
    }
    case 8:
    case 9:
    case 10:
    case 11: /* ordinary magnitudes */
      return fpu_pack(f, sign, bias - 10 + (int64_t)(low % 21), frac);
    default: /* any finite exponent */
      return fpu_pack(f, sign, 1 + (int64_t)(low % (uint64_t)(f->exp_max - 1)), frac);
  }
}

/* A value whose exponent is close to that of `near` (alignment and
 * cancellation in addition), about one ulp of `near` (often exactly half an
 * ulp: a tie), anything within 64 binades, or `near` nudged by a few ulps. */
static inline uint64_t fpu_case_float_near(struct FpuRng* r, const struct FpuFormat* f,
                                           uint64_t near) {
  const uint64_t sign_bit = 1ull << (f->width - 1);
  const uint64_t width_mask = f->width == 64 ? ~0ull : 0xffffffffull;
  const uint64_t sign = fpu_rng_next(r) & 1;
  const uint64_t kind = fpu_rng_below(r, 4);
  const int64_t offset = (int64_t)fpu_rng_below(r, 129) - 64;
  const uint64_t frac = fpu_case_frac(r, f);
  const int64_t e = fpu_exp_of(f, near);
  switch (kind) {
    case 0: {
      const uint64_t nudged = (near + (uint64_t)(offset % 3)) & width_mask & ~sign_bit;
      return nudged | (sign ? sign_bit : 0);
    }
    case 1:
      return fpu_pack(f, sign, e + offset % 3, frac);
    case 2: /* mostly a power of two, half an ulp of `near` */
      return fpu_pack(f, sign, e - f->frac_bits - 1 + offset % 2, (offset & 3) ? 0 : frac);
    default:
      return fpu_pack(f, sign, e + offset, frac);
  }
}

/* An integer operand (as a 64-bit pattern) for the int-to-float conversions
 * to a format with `prec` significant bits: small values, powers of two and
 * their neighbours, values with two bits set, odd values of prec + 1 bits
 * (exact ties), and uniform values. */
static inline uint64_t fpu_case_int(struct FpuRng* r, enum FpuKind type, int prec) {
  const int bits = (type == FPU_KIND_W || type == FPU_KIND_WU) ? 32 : 64;
  const uint64_t x = fpu_rng_next(r);
  const uint64_t y = fpu_rng_next(r);
  const uint64_t kind = fpu_rng_below(r, 8);
  const uint64_t negate = fpu_rng_next(r) & 1;
  uint64_t v;
  switch (kind) {
    case 0: v = x % 2048; break;
    case 1: v = (1ull << (x % (uint64_t)bits)) + (y % 5) - 2; break;
    case 2: v = (1ull << (x % (uint64_t)bits)) | (1ull << (y % (uint64_t)bits)); break;
    case 3: v = (x >> (y % (uint64_t)bits)) << (y % 13); break;
    case 4: v = ~0ull - (x % 4); break;
    case 5:
    case 6:
      if (prec < bits) {
        v = ((x >> (63 - prec)) | (1ull << prec) | 1) << (y % (uint64_t)(bits - prec));
      } else {
        v = x;
      }
      break;
    default: v = x; break;
  }
  if (negate) v = 0 - v;
  if (bits == 32) {
    /* A 32-bit operand, held sign-extended as RISC-V registers hold it. */
    v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
  }
  return v;
}

/* A value exactly halfway between two integers (below 2^max_bits), or, for
 * a binary64 value narrowed to binary32, exactly halfway between two
 * binary32 values: ties for the rounding modes to tell apart. */
static inline uint64_t fpu_case_tie(struct FpuRng* r, const struct FpuFormat* f, int narrow) {
  const uint64_t sign = fpu_rng_next(r) & 1;
  const uint64_t x = fpu_rng_next(r);
  const uint64_t y = fpu_rng_next(r);
  const uint64_t mask = (1ull << f->frac_bits) - 1;
  if (narrow) { /* binary64 with 25 significant bits, the last one set */
    const int64_t e = 1023 - 150 + (int64_t)(y % 280); /* subnormal to overflowing singles */
    return fpu_pack(f, sign, e, ((x & mask) & ~((1ull << 29) - 1)) | (1ull << 28));
  }
  const int max_bits = f->frac_bits < 34 ? f->frac_bits : 34;
  const int t = (int)(y % (uint64_t)max_bits); /* the value is in [2^t, 2^(t+1)) */
  const uint64_t frac = ((x & mask) & ~((1ull << (f->frac_bits - t)) - 1)) |
                        (1ull << (f->frac_bits - t - 1));
  return fpu_pack(f, sign, f->bias + t, frac);
}

/* The operands of one case of `op`. */
static inline void fpu_case_operands(int op, struct FpuRng* r, uint64_t in[3]) {
  const struct FpuOpInfo* info = &kFpuOpInfo[op];
  if (info->in != FPU_KIND_S && info->in != FPU_KIND_D) {
    in[0] = fpu_case_int(r, info->in, info->out == FPU_KIND_S ? 24 : 53);
    in[1] = in[2] = 0;
    return;
  }
  const struct FpuFormat* f = info->in == FPU_KIND_S ? &kFpuF32 : &kFpuF64;
  const uint64_t shape = fpu_rng_below(r, 8);
  in[0] = fpu_case_float(r, f);
  in[1] = 0;
  in[2] = 0;
  if (info->arity == 1) {
    if (shape >= 6 && info->out == FPU_KIND_X) in[0] = fpu_case_tie(r, f, 0);
    if (shape >= 6 && op == FPU_OP_FCVT_S_D) in[0] = fpu_case_tie(r, f, 1);
    return;
  }
  if (shape < 3) {
    in[1] = fpu_case_float(r, f);
  } else if (shape < 5) {
    in[1] = fpu_case_float_near(r, f, in[0]);
  } else if (shape == 5) {
    /* Half an ulp of in[0]: a sum or difference exactly halfway. */
    const uint64_t sign = fpu_rng_next(r) & 1;
    in[1] = fpu_pack(f, sign, (int64_t)fpu_exp_of(f, in[0]) - f->frac_bits - 1, 0);
  } else {
    /* A power of two (products stay exact), or 1.5 times one with in[0]'s
     * significand made to have one bit fewer than its triple: a product
     * exactly halfway. */
    const uint64_t sign = fpu_rng_next(r) & 1;
    const int64_t e = f->bias - 8 + (int64_t)fpu_rng_below(r, 17);
    in[1] = fpu_pack(f, sign, e, shape == 7 ? 1ull << (f->frac_bits - 1) : 0);
    if (shape == 7) {
      /* The low bits also decide whether the lower neighbour of the tie is
       * even (RNE and RMM differ) or odd (they agree). */
      const uint64_t frac = in[0] & ((1ull << f->frac_bits) - 1);
      const uint64_t even = (frac >> 3) & 1;
      if (frac < (1ull << f->frac_bits) / 3) {
        in[0] = (in[0] & ~3ull) | (even ? 3 : 1);
      } else {
        in[0] = (in[0] & ~7ull) | (even ? 6 : 2);
      }
    }
  }
  if (info->arity == 3) {
    /* An addend near the product's magnitude makes cancellation likely, and
     * one about an ulp of it makes ties. */
    const int64_t product_exp = (int64_t)fpu_exp_of(f, in[0]) + fpu_exp_of(f, in[1]) - f->bias;
    const uint64_t independent = fpu_rng_below(r, 3) == 0;
    if (independent || product_exp < 0 || product_exp > f->exp_max) {
      in[2] = fpu_case_float(r, f);
    } else {
      in[2] = fpu_case_float_near(r, f, fpu_pack(f, 0, product_exp, 0));
    }
  }
}

#endif /* FTVM_VM_TESTDATA_FPU_CASES_H_ */
