// The A/B switches (NNFAST_<NAME>=0 turns a fast path off, for timing and as a
// fallback; README lists them). One reader for all of them, so that every switch
// means the same thing: on unless the variable starts with '0'. Callers keep the
// answer in a static, read once, so a forward and its backward (and every ISA
// object's copy of a kernel) always take the same path.
#pragma once
#include <cstdlib>

namespace nnfast {

inline bool env_switch_on(const char* name) {
  const char* e = std::getenv(name);
  return !(e && e[0] == '0');
}

}  // namespace nnfast
