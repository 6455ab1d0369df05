// Exact brute-force index over the same vector store as the graph: the test oracle, and the
// exact path for small or very selectively filtered searches.
#pragma once
#include <cstdint>
#include <mutex>
#include <shared_mutex>

#include "core/buffer.hpp"
#include "core/label_map.hpp"
#include "core/parallel.hpp"
#include "flat/code_scan.hpp"
#include "hnsw/hnsw_index.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph {

class FlatIndex {
 public:
  FlatIndex(size_t dim, Metric metric, StorageKind storage, size_t planes = 1)
      : store_(dim, metric, storage, planes) {
    blocks_.configure(store_);
  }

  size_t add(const float* vectors, const int64_t* labels, size_t n);
  void search(const float* queries, size_t nq, size_t k, size_t threads, const SlotFilter* filter,
              int64_t* out_labels, float* out_dists) const;
  // Exact filtered k-NN (plan kExact for every query): selective filters score only the
  // matching slots, broad ones scan everything and skip non-matching rows.
  // Queries come grouped by filter as in HnswIndex::search_filtered.
  void search_filtered(const float* queries, size_t nq, size_t k, size_t threads,
                       const SlotFilter* filters, const size_t* group_offsets, size_t n_filters,
                       int64_t* out_labels, float* out_dists, int8_t* out_plans,
                       int64_t* out_scored) const;
  size_t evaluate_filter(const int64_t* ops, size_t n_ops, const int32_t* entries,
                         size_t n_entries, const uint64_t* loads, size_t n_loads, size_t limit,
                         uint64_t* out) const;
  void remove(const int64_t* labels, size_t n);
  void slots_of(const int64_t* labels, size_t n, int64_t* out) const;
  // Room for `n_slots` slots without slack; shrink_to_fit() gives unused capacity back.
  void reserve(size_t n_slots);
  void shrink_to_fit();

  size_t size() const { return n_slots_ - n_deleted_; }
  size_t n_slots() const { return n_slots_; }
  size_t nbytes() const {
    return store_.nbytes() + labels_.owned_bytes() + deleted_.owned_bytes() +
           label_map_.nbytes() + blocks_.nbytes();
  }
  size_t borrowed_nbytes() const {
    return store_.borrowed_nbytes() + labels_.borrowed_bytes() + deleted_.borrowed_bytes();
  }
  const VectorStore& store() const { return store_; }
  const Buffer<int64_t>& labels() const { return labels_; }
  const Buffer<uint8_t>& deleted() const { return deleted_; }
  void borrow_state(const uint8_t* rows, const int64_t* labels, const uint8_t* deleted,
                    size_t n_slots);

 private:
  VectorStore store_;
  FastscanBlocks blocks_;  // binary SDC stores: the rows again in fast-scan block layout
  Buffer<int64_t> labels_;
  Buffer<uint8_t> deleted_;
  LabelMap label_map_;
  size_t n_slots_ = 0;
  size_t n_deleted_ = 0;
  mutable std::shared_mutex buffers_mu_;
  std::mutex write_mu_;
};

}  // namespace bitgraph
