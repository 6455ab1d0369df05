#include "flat/first_below.hpp"

namespace bitgraph {

// Sixteen compares OR-ed together vectorise (one masked compare per 16 on AVX-512); the exact
// position is only searched in the block that holds one.
__attribute__((target_clones("avx512f", "avx2", "default")))
size_t first_below(const uint32_t* d, size_t begin, size_t n, uint32_t limit) {
  size_t j = begin;
  for (; j + 16 <= n; j += 16) {
    uint32_t hit = 0;
    for (size_t i = 0; i < 16; ++i) hit |= uint32_t(d[j + i] < limit);
    if (hit) break;
  }
  for (; j < n; ++j)
    if (d[j] < limit) return j;
  return n;
}

}  // namespace bitgraph
