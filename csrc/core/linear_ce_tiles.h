// The tiling of linear + cross-entropy (csrc/cpu/loss_linear_ce.cpp, csrc/cuda/loss_linear_ce.cu):
// logits are made `rows` x `classes` at a time, at most kLinearCETileElems values, so both
// devices walk the same tiles and the workspace stays bounded whatever N and C are.
#pragma once
#include <algorithm>

#include "nnfast/common.h"

namespace nnfast {

constexpr index_t kLinearCETileElems = index_t(1) << 20;

struct LinearCETiles {
  index_t classes, rows;  // class chunk cc and row block rb
};

inline LinearCETiles linear_ce_tiles(index_t N, index_t C, index_t chunk) {
  LinearCETiles t;
  t.classes = std::max<index_t>(1, std::min(chunk, C));
  t.rows = std::max<index_t>(1, std::min<index_t>(N, kLinearCETileElems / t.classes));
  return t;
}

}  // namespace nnfast
