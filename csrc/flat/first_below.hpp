// Skipping scan over integer distances: a top-k only takes the rare distance below its current
// k-th, so scans look for the next such one instead of branching on every element.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

// Index of the first j in [begin, n) with d[j] < limit, or n.
size_t first_below(const uint32_t* d, size_t begin, size_t n, uint32_t limit);

// Bit j set where d[j] < limit, for the first `count` (<= 64) elements: one call per 64
// elements, when several of them pass (a first_below call per hit costs a call each).
uint64_t below_mask(const uint32_t* d, size_t count, uint32_t limit);

}  // namespace bitgraph
