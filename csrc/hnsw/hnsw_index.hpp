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
};

// A search restriction: slot i may be returned only if bit i is set.
struct SlotFilter {
  const uint64_t* bits = nullptr;
  size_t words = 0;
  bool allows(uint32_t slot) const {
    size_t w = slot >> 6;
    return w < words && ((bits[w] >> (slot & 63)) & 1u);
  }
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
  // Tombstones the given labels; throws KeyError (and changes nothing) if one is unknown.
  void remove(const int64_t* labels, size_t n);
  // slot of each label, -1 when unknown or removed.
  void slots_of(const int64_t* labels, size_t n, int64_t* out) const;

  size_t size() const { return n_slots_ - n_deleted_; }
  size_t n_slots() const { return n_slots_; }
  size_t nbytes() const;
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
  void insert(uint32_t slot, Scratch& s);
  uint32_t greedy_descend(const float* q, uint32_t start, int from_level, int to_level) const;
  void search_layer(const float* q, uint32_t entry, size_t ef, int level, Scratch& s) const;
  void select_neighbors(std::vector<Scored>& candidates, size_t m, Scratch& s) const;
  void link_back(uint32_t from, uint32_t to, float dist, int level, Scratch& s);
  void search_one(const float* q, size_t k, size_t ef, const SlotFilter* filter, Scratch& s,
                  int64_t* out_labels, float* out_dists) const;
  template <class Admissible>
  void search_filtered_layer0(const float* q, uint32_t entry, size_t ef, const Admissible& ok,
                              Scratch& s, TopK& results) const;
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
