// parallel_for over [0, n): OpenMP static chunks, serial below `grain`
// elements so tiny tensors pay no thread spin-up. Exceptions thrown inside a
// chunk are caught there and rethrown on the calling thread.
#pragma once
#include <algorithm>
#include <exception>
#include <mutex>

#include "nnfast/common.h"
#include "nnfast/parallel.h"

#ifdef NNFAST_HAVE_OPENMP
#include <omp.h>
#endif

namespace nnfast {

// Elements per thread below which an elementwise kernel stays serial.
constexpr index_t kElementwiseGrain = 32768;

template <typename F>
inline void parallel_for(index_t n, index_t grain, F&& f) {
  if (n <= 0) return;
  int nt = get_num_threads();
  if (grain < 1) grain = 1;
  index_t max_chunks = (n + grain - 1) / grain;
  if (nt > max_chunks) nt = static_cast<int>(max_chunks);
  if (nt <= 1) {
    f(index_t(0), n);
    return;
  }
#ifdef NNFAST_HAVE_OPENMP
  std::exception_ptr err;
  std::mutex err_mutex;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int nth = omp_get_num_threads();
    const index_t chunk = (n + nth - 1) / nth;
    const index_t lo = std::min<index_t>(n, t * chunk);
    const index_t hi = std::min<index_t>(n, lo + chunk);
    try {
      if (lo < hi) f(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(err_mutex);
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
#else
  f(index_t(0), n);
#endif
}

}  // namespace nnfast
