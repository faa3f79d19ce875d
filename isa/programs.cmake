isa_test(rv64i_alu)
isa_test(rv64i_mem)
isa_test(rv64i_ctrl)
isa_test(rv64m)
isa_test(rv64a)
isa_test(rv64f)
isa_test(fcsr)
isa_test(rv64d)
isa_test(rvc)
isa_test(zicsr)
isa_test(zifencei)
# Exact instret on QEMU needs instruction counting.
isa_test(counters QEMU_ARGS -icount shift=0)
isa_test(traps)
isa_test(delegation)
isa_test(sv39)
isa_test(interrupts)

# Differential programs.
isa_diff(diff_int)
isa_diff(diff_fp)
isa_diff(diff_decode)
isa_diff(diff_mem)
isa_diff(diff_csr)
isa_diff(diff_vm)

# ftvm only: HTIF tohost exits (QEMU virt has no HTIF) and the instruction
# limit.
isa_status_test(htif_exit0 tests/htif.c 0 DEFINES -DHTIF_CODE=0)
isa_status_test(htif_exit37 tests/htif.c 37 DEFINES -DHTIF_CODE=37)
isa_status_test(max_instructions tests/spin.c 124 RUN_ARGS --max-instructions 200000)
