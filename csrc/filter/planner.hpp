// The vocabulary of filtered search: a restriction to a set of slots, the plans the per-query
// planner chooses from, and its thresholds (python/bitgraph/planner.py documents and
// calibrates them). Shared by every index kind.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

// A search restriction: slot i may be returned only if bit i is set. `count` is the number of
// bits set (the planner's |S|), or kUnknownCount.
struct SlotFilter {
  static constexpr size_t kUnknownCount = size_t(-1);
  const uint64_t* bits = nullptr;
  size_t words = 0;
  size_t count = kUnknownCount;
  bool allows(uint32_t slot) const {
    size_t w = slot >> 6;
    return w < words && ((bits[w] >> (slot & 63)) & 1u);
  }
};

// How one filtered query was answered (SearchResult.plans; names in python/bitgraph/planner.py).
enum class FilterPlan : int8_t {
  kNone = 0,           // no filter
  kExact = 1,          // scored every matching item (few matches: cheaper than a walk, exact)
  kAcorn = 2,          // walk of the predicate subgraph: only matching nodes, two-hop expansion
  kPostFilter = 3,     // normal walk over all nodes, only matching ones enter the results
  kExactFallback = 4,  // a walk scored more nodes than there are matches: finished exactly
};

struct PlannerParams {
  // Exact scan when matches^2 <= ratio * ef * size: a scan costs ~|S|, a filtered walk
  // ~ef / selectivity = ef * size / |S| (it must pass ~1/s nodes per match it keeps).
  double exact_ratio = 7.0;             // one query (gathered rows)
  double exact_ratio_batched = 1000.0;  // groups of >= 8 queries (tiled pass, ~10x cheaper)
  double acorn_below = 0.05;   // ACORN walk below this selectivity, post-filter walk above
  size_t seeds = 8;            // entry points drawn from the matching set for ACORN walks
};

// The planner settings that answer every query with the exact scan of its matches.
inline PlannerParams exact_planner() { return PlannerParams{1e300, 1e300, 0.0, 0}; }

}  // namespace bitgraph
