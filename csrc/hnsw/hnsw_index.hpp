// HNSW index over a pluggable vector store.
//
// Concurrency: search() may run from any number of threads at once, also while one add() or
// remove() runs (add/remove calls are serialised among themselves). Buffers only move inside
// add()'s short exclusive section, which waits for running searches; a search that overlaps an
// insertion sees the items whose insertion finished and possibly some still being linked.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "core/buffer.hpp"
#include "core/label_map.hpp"
#include "core/parallel.hpp"
#include "core/topk.hpp"
#include "core/visited.hpp"
#include "hnsw/graph.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph {

struct HnswParams {
  size_t dim;
  Metric metric;
  StorageKind storage;
  size_t M;
  size_t ef_construction;
  uint64_t seed;
  size_t planes = 1;  // bit planes of a binary code row (storage kBinary only)
};

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
  kExact = 1,          // scored every matching item (few matches: cheaper than a walk, exact)
  kAcorn = 2,          // walk of the predicate subgraph: only matching nodes, two-hop expansion
  kPostFilter = 3,     // normal walk over all nodes, only matching ones enter the results
  kExactFallback = 4,  // a walk scored more nodes than there are matches: finished exactly
};

// Planner thresholds (python/bitgraph/planner.py documents and calibrates them).
struct PlannerParams {
  // Exact scan when matches^2 <= ratio * ef * size: a scan costs ~|S|, a filtered walk
  // ~ef / selectivity = ef * size / |S| (it must pass ~1/s nodes per match it keeps).
  double exact_ratio = 7.0;             // one query (gathered rows)
  double exact_ratio_batched = 1000.0;  // groups of >= 8 queries (tiled pass, ~10x cheaper)
  double acorn_below = 0.05;   // ACORN walk below this selectivity, post-filter walk above
  size_t seeds = 8;            // entry points drawn from the matching set for ACORN walks
};

class HnswIndex {
 public:
  explicit HnswIndex(const HnswParams& params);

  // Inserts n vectors under the given labels (a known label is replaced). Returns the number
  // inserted; throws Cancelled if `progress` asked to stop (finished items stay).
  size_t add(const float* vectors, const int64_t* labels, size_t n, size_t threads,
             const ProgressFn& progress);
  // Writes k labels/distances per query, padded with -1/+inf.
  void search(const float* queries, size_t nq, size_t k, size_t ef, size_t threads,
              const SlotFilter* filter, int64_t* out_labels, float* out_dists) const;
  // Filtered k-NN: the planner picks a plan per query and reports it with the nodes scored.
  // Queries come grouped by filter: group g is queries [group_offsets[g], group_offsets[g+1])
  // and uses filters[g].
  void search_filtered(const float* queries, size_t nq, size_t k, size_t ef, size_t threads,
                       const SlotFilter* filters, const size_t* group_offsets, size_t n_filters,
                       const PlannerParams& planner, int64_t* out_labels, float* out_dists,
                       int8_t* out_plans, int64_t* out_scored) const;
  // Evaluates a compiled filter program over the live slots below `limit` (the slots whose
  // attributes are recorded: an add still in progress has slots without them, which even a
  // NOT must not admit) into bitset_words(min(limit, n_slots())) words; returns the matches.
  size_t evaluate_filter(const int64_t* ops, size_t n_ops, const int32_t* entries,
                         size_t n_entries, const uint64_t* loads, size_t n_loads, size_t limit,
                         uint64_t* out) const;
  // Tombstones the given labels; throws KeyError (and changes nothing) if one is unknown.
  void remove(const int64_t* labels, size_t n);
  // slot of each label, -1 when unknown or removed.
  void slots_of(const int64_t* labels, size_t n, int64_t* out) const;

  size_t size() const { return n_slots_ - n_deleted_; }
  size_t n_slots() const { return n_slots_; }
  // Bytes of owned memory (capacity included); arrays adopted from a file are not owned.
  size_t nbytes() const;
  // Bytes of adopted arrays (a memory map, or the caller's buffer) not yet copied.
  size_t borrowed_nbytes() const {
    return store_.borrowed_nbytes() + graph_.borrowed_nbytes() + labels_.borrowed_bytes() +
           deleted_.borrowed_bytes();
  }
  // Makes room for `n_slots` slots in total without slack (an ingest of known size).
  void reserve(size_t n_slots);
  // Gives unused capacity back (free where buffers are mappings).
  void shrink_to_fit();
  const HnswParams& params() const { return params_; }

  // --- state for persistence (arrays cover n_slots() rows) ---
  const VectorStore& store() const { return store_; }
  const Graph& graph() const { return graph_; }
  const Buffer<int64_t>& labels() const { return labels_; }
  const Buffer<uint8_t>& deleted() const { return deleted_; }
  int64_t entry_point() const { return entry_point_; }
  int max_level() const { return max_level_; }
  // Adopts arrays (not copied; copied on first modification). Validates graph links.
  void borrow_state(const uint8_t* rows, const int32_t* links0, const int32_t* levels,
                    const int32_t* upper, size_t upper_len, const int64_t* labels,
                    const uint8_t* deleted, size_t n_slots, int64_t entry_point, int max_level);

 private:
  struct Scratch;
  // Runs fn(query index, scratch) over nq queries on `threads` threads, each thread with its
  // own scratch and a visited set from the pool (defined in scratch.hpp).
  template <class Fn>
  void for_each_query(size_t nq, size_t threads, const Fn& fn) const;
  void insert(uint32_t slot, Scratch& s);
  uint32_t greedy_descend(const float* q, uint32_t start, int from_level, int to_level) const;
  void search_layer(const float* q, uint32_t entry, size_t ef, int level, Scratch& s) const;
  void select_neighbors(std::vector<Scored>& candidates, size_t m, Scratch& s) const;
  void link_back(uint32_t from, uint32_t to, float dist, int level, Scratch& s);
  // Gives every live node that the entry point cannot reach through level-0 links an in-link
  // from a node it reaches (hnsw/repair.cpp). Returns the number of nodes repaired.
  size_t repair_reachability(Scratch& s);
  void search_one(const float* q, size_t k, size_t ef, const SlotFilter* filter, Scratch& s,
                  int64_t* out_labels, float* out_dists) const;
  template <class Admissible>
  void search_filtered_layer0(const float* q, uint32_t entry, size_t ef, const Admissible& ok,
                              Scratch& s, TopK& results) const;
  void search_one_filtered(const float* q, size_t k, size_t ef, const SlotFilter& filter,
                           const PlannerParams& planner, Scratch& s, int64_t* out_labels,
                           float* out_dists, int8_t* plan, int64_t* scored) const;
  bool acorn_walk(const float* q, uint32_t entry, size_t ef, const SlotFilter& filter,
                  size_t n_seeds, size_t budget, Scratch& s, int64_t* scored) const;
  bool post_filter_walk(const float* q, uint32_t entry, size_t ef, const SlotFilter& filter,
                        size_t budget, Scratch& s, TopK& results, int64_t* scored) const;
  bool exact_is_cheaper(size_t matches, double ratio, size_t ef) const {
    return double(matches) * double(matches) <= ratio * double(ef) * double(size());
  }
  std::mutex& stripe(uint32_t slot) const { return stripes_[slot & (kStripes - 1)]; }
  void make_owned();

  static constexpr size_t kStripes = 4096;

  HnswParams params_;
  VectorStore store_;
  Graph graph_;
  Buffer<int64_t> labels_;
  Buffer<uint8_t> deleted_;
  LabelMap label_map_;
  size_t n_slots_ = 0;
  size_t n_deleted_ = 0;
  size_t inserted_since_repair_ = 0;  // repairs are amortised: one per ~1/32 growth
  std::atomic<int64_t> entry_point_{-1};
  std::atomic<int> max_level_{-1};
  uint64_t rng_state_;
  double level_mult_;

  mutable std::shared_mutex buffers_mu_;   // exclusive only while buffers move
  std::mutex write_mu_;                    // serialises add/remove
  std::mutex entry_mu_;                    // held while a node above max_level is inserted
  mutable std::unique_ptr<std::mutex[]> stripes_;
  mutable VisitedPool visited_pool_;
};

}  // namespace bitgraph
