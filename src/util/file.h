// Reading whole input files (kernels, initrds, programs) with errors a user
// can act on.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "util/result.h"

namespace ftvm {

// Reads the regular file at `path`; `what` names it in errors ("kernel").
inline Result<std::vector<uint8_t>> read_file(const std::string& path, const char* what) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return make_error(std::string("cannot open ") + what + " '" + path + "'");
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(std::string(what) + " '" + path + "' is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(std::string("cannot open ") + what + " '" + path + "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), st.st_size)) {
    return make_error(std::string("cannot read ") + what + " '" + path + "'");
  }
  if (bytes.empty()) return make_error(std::string(what) + " '" + path + "' is empty");
  return bytes;
}

}  // namespace ftvm
