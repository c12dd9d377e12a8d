#include "nnfast/parallel.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cpu_features.h"

#ifdef NNFAST_HAVE_OPENMP
#include <omp.h>
#endif

namespace nnfast {
namespace {

int threads_from_env() {
  for (const char* name : {"NNFAST_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(name);
    if (v && *v) {
      int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
  return 0;
}

int& thread_setting() {
  static int n = [] {
    int env = threads_from_env();
#ifdef NNFAST_HAVE_OPENMP
    return env > 0 ? env : omp_get_num_procs();
#else
    (void)env;
    return 1;
#endif
  }();
  return n;
}

}  // namespace

int get_num_threads() { return thread_setting(); }

void set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_setting() = n;
}

bool openmp_enabled() {
#ifdef NNFAST_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

const char* cpu_isa() { return isa_name(active_isa()); }

bool set_cpu_isa(const char* name) {
  Isa want;
  if (!parse_isa(name, &want)) return false;
  if (!isa_supported(want)) return false;
  force_isa(want);
  return true;
}

}  // namespace nnfast
