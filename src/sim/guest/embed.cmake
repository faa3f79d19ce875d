# cmake -DINPUT=kv.elf -DOUTPUT=kv_image.cc -DSYMBOL=kKvGuestElf -P embed.cmake
# Writes a C++ source defining `ftvm::sim::SYMBOL` as the bytes of INPUT.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" body "${body}")
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by embed.cmake; do not edit.\n#include <cstddef>\n#include <cstdint>\nnamespace ftvm::sim {\nextern const uint8_t ${SYMBOL}[];\nextern const size_t ${SYMBOL}Size;\nconst uint8_t ${SYMBOL}[] = {\n${body}\n};\nconst size_t ${SYMBOL}Size = ${bytes};\n}  // namespace ftvm::sim\n")
