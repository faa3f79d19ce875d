# The list of ISA programs. Self-checking tests live in tests/, differential
# programs in diff/.
isa_test(smoke)
