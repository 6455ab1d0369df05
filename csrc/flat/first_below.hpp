// Skipping scan over integer distances: a top-k only takes the rare distance below its current
// k-th, so scans look for the next such one instead of branching on every element.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

// Index of the first j in [begin, n) with d[j] < limit, or n.
size_t first_below(const uint32_t* d, size_t begin, size_t n, uint32_t limit);

}  // namespace bitgraph
