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
#include "core/parallel.hpp"
#include "core/topk.hpp"
#include "core/visited.hpp"
#include "filter/planner.hpp"
#include "filter/search_request.hpp"
#include "hnsw/graph.hpp"
#include "index/slot_index.hpp"
#include "storage/code_store.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph {

struct HnswParams {
  size_t dim;
  Metric metric;
  StorageKind storage;
  size_t M;
  size_t ef_construction;
  uint64_t seed;
  CodeLayout layout{};  // the code rows of storage kBinary
  StoreSpec store_spec() const { return StoreSpec{dim, metric, storage, layout}; }
};

// Store: RowStore (float rows, float32 queries) or CodeStore (binary codes, uint8 queries).
template <class Store>
class HnswIndexT : public SlotIndex {
 public:
  using Query = typename Store::Query;
  explicit HnswIndexT(const HnswParams& params);
  ~HnswIndexT() override;  // defined where Scratch is complete (build.cpp)

  // Inserts n vectors under the given labels (a known label is replaced). Returns the number
  // inserted; throws Cancelled if `progress` asked to stop (finished items stay).
  size_t add(const Query* vectors, const int64_t* labels, size_t n, size_t threads,
             const ProgressFn& progress);
  // Answers a whole search call (filter/search_request.hpp).
  void search(const SearchRequestOf<Query>& request, const SearchOutput& out) const {
    run_search(*this, request, out);
  }
  // Values per query row (run_search gathers rows of this width).
  size_t query_width() const { return store_.query_width(); }
  size_t add_width() const { return store_.add_width(); }
  // Unfiltered k-NN of each query (rows of k, padded with -1/+inf).
  void search_rows(const Query* queries, size_t nq, size_t k, size_t ef, size_t threads,
                   int64_t* out_labels, float* out_dists) const {
    search(queries, nq, k, ef, threads, nullptr, out_labels, out_dists);
  }
  // Writes k labels/distances per query, padded with -1/+inf.
  void search(const Query* queries, size_t nq, size_t k, size_t ef, size_t threads,
              const SlotFilter* filter, int64_t* out_labels, float* out_dists) const;
  // Filtered k-NN: the planner picks a plan per query and reports it with the nodes scored.
  // Queries come grouped by filter: group g is queries [group_offsets[g], group_offsets[g+1])
  // and uses filters[g].
  void search_filtered(const Query* queries, size_t nq, size_t k, size_t ef, size_t threads,
                       const SlotFilter* filters, const size_t* group_offsets, size_t n_filters,
                       const PlannerParams& planner, int64_t* out_labels, float* out_dists,
                       int8_t* out_plans, int64_t* out_scored) const;
  // Bytes of owned memory (capacity included); arrays adopted from a file are not owned.
  size_t nbytes() const;
  // Bytes of adopted arrays (a memory map, or the caller's buffer) not yet copied.
  size_t borrowed_nbytes() const {
    return store_.borrowed_nbytes() + graph_.borrowed_nbytes() + slots_borrowed_nbytes();
  }
  const HnswParams& params() const { return params_; }

  // --- state for persistence (arrays cover n_slots() rows) ---
  const Store& store() const { return store_; }
  const Graph& graph() const { return graph_; }
  int64_t entry_point() const { return entry_point_; }
  int max_level() const { return max_level_; }
  // Adopts arrays (not copied; copied on first modification). Validates graph links.
  void borrow_state(const uint8_t* rows, const int32_t* links0, const int32_t* levels,
                    const int32_t* upper, size_t upper_len, const int64_t* labels,
                    const uint8_t* deleted, size_t n_slots, int64_t entry_point, int max_level);

 private:
  void reserve_rows(size_t n_slots) override;
  void shrink_rows() override;
  struct Scratch;
  // Runs fn(query index, scratch) over nq queries on `threads` threads, each thread with its
  // own scratch (defined in scratch.hpp).
  // Scratch of queries, reused between calls (a one-query search allocates nothing) and
  // owned by the index, so its visited sets go with it (scratch.hpp).
  std::unique_ptr<Scratch> acquire_scratch() const;
  void release_scratch(std::unique_ptr<Scratch> s) const;
  // M is at most this (python/bitgraph/hnsw.py: MAX_M): descents use stack buffers of it.
  static constexpr size_t kMaxM = 512;
  template <class Fn>
  void for_each_query(size_t nq, size_t threads, const Fn& fn) const;
  void insert(uint32_t slot, Scratch& s);
  // The closest node found on to_level, descending greedily from `start` on from_level.
  // `path` (may be null) receives the node reached on each level from_level .. to_level + 1.
  uint32_t greedy_descend(const Query* q, uint32_t start, int from_level, int to_level,
                          uint32_t* path = nullptr) const;
  void search_layer(const Query* q, uint32_t entry, size_t ef, int level, Scratch& s) const;
  void select_neighbors(std::vector<Scored>& candidates, size_t m, Scratch& s) const;
  void link_back(uint32_t from, uint32_t to, float dist, int level, Scratch& s);
  // Gives every live node that the entry point cannot reach through level-0 links an in-link
  // from a node it reaches (hnsw/repair.cpp). Returns the number of nodes repaired.
  size_t repair_reachability(Scratch& s);
  void search_one(const Query* q, size_t k, size_t ef, const SlotFilter* filter, Scratch& s,
                  int64_t* out_labels, float* out_dists) const;
  // search_one's level-0 part, from the level-0 entry its descent reached.
  void walk_from(const Query* q, uint32_t entry, size_t k, size_t ef, const SlotFilter* filter,
                 Scratch& s, int64_t* out_labels, float* out_dists) const;
  // A batch's descents, then its level-0 walks in the order of their descent paths.
  void search_ordered(const Query* queries, size_t nq, size_t k, size_t ef, size_t threads,
                      const SlotFilter* filter, int64_t* out_labels, float* out_dists) const;
  // The level-0 walk of every restricted search (tombstones, a filter): it passes through
  // every node but admits only `ok` ones into `results` (sized by the caller), whose worst
  // distance bounds it. Stops and returns false once it scored more than `budget` nodes;
  // adds the nodes it scored to *scored when given.
  struct FilterAdmits {
    const uint8_t* deleted;
    const SlotFilter* filter;
    bool operator()(uint32_t slot) const { return !deleted[slot] && filter->allows(slot); }
  };
  template <class Admissible>
  bool restricted_walk(const Query* q, uint32_t entry, const Admissible& ok, size_t budget,
                       Scratch& s, TopK& results, int64_t* scored) const;
  void search_one_filtered(const Query* q, size_t k, size_t ef, const SlotFilter& filter,
                           const PlannerParams& planner, Scratch& s, int64_t* out_labels,
                           float* out_dists, int8_t* plan, int64_t* scored) const;
  bool acorn_walk(const Query* q, uint32_t entry, size_t ef, const SlotFilter& filter,
                  size_t n_seeds, size_t budget, Scratch& s, int64_t* scored) const;
  bool exact_is_cheaper(size_t matches, double ratio, size_t ef) const {
    return double(matches) * double(matches) <= ratio * double(ef) * double(size());
  }
  std::mutex& stripe(uint32_t slot) const { return stripes_[slot & (kStripes - 1)]; }
  void make_owned();

  static constexpr size_t kStripes = 4096;

  HnswParams params_;
  Store store_;
  Graph graph_;
  size_t inserted_since_repair_ = 0;  // repairs are amortised: one per ~1/32 growth
  std::atomic<int64_t> entry_point_{-1};
  std::atomic<int> max_level_{-1};
  uint64_t rng_state_;
  double level_mult_;

  std::mutex entry_mu_;                    // held while a node above max_level is inserted
  mutable std::unique_ptr<std::mutex[]> stripes_;
  mutable VisitedPool visited_pool_;
  mutable std::mutex scratch_mu_;
  mutable std::vector<std::unique_ptr<Scratch>> free_scratch_;
};

using HnswIndex = HnswIndexT<RowStore>;
using HnswCodeIndex = HnswIndexT<CodeStore>;

}  // namespace bitgraph
