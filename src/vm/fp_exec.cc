// exec_fp: the F/D computational instructions of fp_ops.h as a function,
// for the translator, which calls it from generated code.
#include "vm/fp_ops.h"
#include "vm/hart.h"

namespace ftvm::vm {

bool exec_fp(HartState& s, const DecodedInsn& d) {
  using fp_ops::box_s;
  using fp_ops::unbox_s;
  using int_ops::sext32;
  uint64_t* const x = s.x.data();
  uint64_t* const f = s.f.data();
  if ((s.mstatus & mstatus::kFs) == 0) return false;
  const uint32_t rm = d.rm == 7 ? s.frm : d.rm;
  uint32_t fl = 0;
  // Operations with a rounding mode check it first: a reserved one is illegal.
#define FX_RM() \
  if (rm > 4) return false
#define WRITE_F(value)            \
  f[d.rd] = (value);           \
  s.fflags |= fl;              \
  s.mstatus |= mstatus::kFs;   \
  return true
#define WRITE_X(value)            \
  x[d.rd] = (value);             \
  if (fl != 0) {                 \
    s.fflags |= fl;              \
    s.mstatus |= mstatus::kFs;   \
  }                              \
  return true
// FTVM_FP_OPS's kinds (_S, N_S, ...) name these.
#define FX_S(expr) FX_RM(); WRITE_F(box_s(expr))
#define FX_D(expr) FX_RM(); WRITE_F(expr)
#define FX_X(expr) FX_RM(); WRITE_X(expr)
#define FXN_S(expr) WRITE_F(box_s(expr))
#define FXN_D(expr) WRITE_F(expr)
#define FXN_X(expr) WRITE_X(expr)
#define FS1 unbox_s(f[d.rs1])
#define FS2 unbox_s(f[d.rs2])
#define FS3 unbox_s(f[d.rs3])
#define FD1 f[d.rs1]
#define FD2 f[d.rs2]
#define FD3 f[d.rs3]
#define RS1 x[d.rs1]
#define FTVM_FP_CASE(name, kind, expr) \
  case name: {                         \
    FX##kind(expr);                    \
  }
  switch (d.op) {
    FTVM_FP_OPS(FTVM_FP_CASE)
    default:
      return false;
  }
#undef FTVM_FP_CASE
#undef RS1
#undef FD3
#undef FD2
#undef FD1
#undef FS3
#undef FS2
#undef FS1
#undef FXN_X
#undef FXN_D
#undef FXN_S
#undef FX_X
#undef FX_D
#undef FX_S
#undef WRITE_X
#undef WRITE_F
#undef FX_RM
}

}  // namespace ftvm::vm
