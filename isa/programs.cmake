isa_test(rv64i_alu)
isa_test(rv64i_mem)
isa_test(rv64i_ctrl)
