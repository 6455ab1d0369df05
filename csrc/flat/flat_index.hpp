// Exact brute-force index over the same vector store as the graph: the test oracle, and the
// exact path for small or very selectively filtered searches.
#pragma once
#include <cstdint>
#include <mutex>
#include <shared_mutex>

#include "core/buffer.hpp"
#include "core/parallel.hpp"
#include "filter/planner.hpp"
#include "filter/search_request.hpp"
#include "flat/code_scan.hpp"
#include "index/slot_index.hpp"
#include "storage/code_store.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph {

// Store: RowStore (float rows, float32 queries) or CodeStore (binary codes, uint8 queries).
template <class Store>
class FlatIndexT : public SlotIndex {
 public:
  using Query = typename Store::Query;
  explicit FlatIndexT(const StoreSpec& spec) : store_(spec) {
    if constexpr (Store::kCodes) blocks_.configure(store_);
  }

  size_t add(const Query* vectors, const int64_t* labels, size_t n);
  // Answers a whole search call (filter/search_request.hpp; ef and the planner are unused:
  // every plan of an exact index is the exact one).
  void search(const SearchRequestOf<Query>& request, const SearchOutput& out) const {
    run_search(*this, request, out);
  }
  size_t query_width() const { return store_.query_width(); }
  size_t add_width() const { return store_.add_width(); }
  // The graph index's signature (ef unused), for the bindings' shared search entry.
  void search(const Query* queries, size_t nq, size_t k, size_t /*ef*/, size_t threads,
              const SlotFilter* filter, int64_t* out_labels, float* out_dists) const {
    search(queries, nq, k, threads, filter, out_labels, out_dists);
  }
  void search_rows(const Query* queries, size_t nq, size_t k, size_t /*ef*/, size_t threads,
                   int64_t* out_labels, float* out_dists) const {
    search(queries, nq, k, threads, nullptr, out_labels, out_dists);
  }
  void search_filtered(const Query* queries, size_t nq, size_t k, size_t /*ef*/,
                       size_t threads, const SlotFilter* filters, const size_t* group_offsets,
                       size_t n_filters, const PlannerParams& /*planner*/, int64_t* out_labels,
                       float* out_dists, int8_t* out_plans, int64_t* out_scored) const {
    search_filtered(queries, nq, k, threads, filters, group_offsets, n_filters, out_labels,
                    out_dists, out_plans, out_scored);
  }
  void search(const Query* queries, size_t nq, size_t k, size_t threads, const SlotFilter* filter,
              int64_t* out_labels, float* out_dists) const;
  // Exact filtered k-NN (plan kExact for every query): selective filters score only the
  // matching slots, broad ones scan everything and skip non-matching rows.
  // Queries come grouped by filter as in HnswIndex::search_filtered.
  void search_filtered(const Query* queries, size_t nq, size_t k, size_t threads,
                       const SlotFilter* filters, const size_t* group_offsets, size_t n_filters,
                       int64_t* out_labels, float* out_dists, int8_t* out_plans,
                       int64_t* out_scored) const;

  size_t nbytes() const {
    return store_.nbytes() + slots_nbytes() + blocks_.nbytes();
  }
  size_t borrowed_nbytes() const {
    return store_.borrowed_nbytes() + slots_borrowed_nbytes();
  }
  const Store& store() const { return store_; }
  void borrow_state(const uint8_t* rows, const int64_t* labels, const uint8_t* deleted,
                    size_t n_slots);

 private:
  void reserve_rows(size_t n_slots) override {
    store_.make_owned();
    store_.reserve(n_slots);
  }
  void shrink_rows() override {
    store_.shrink_to_fit();
    blocks_.shrink_to_fit();
  }
  Store store_;
  FastscanBlocks blocks_;  // code stores (SDC, Hamming): the rows again in fast-scan blocks
};

using FlatIndex = FlatIndexT<RowStore>;
using FlatCodeIndex = FlatIndexT<CodeStore>;

}  // namespace bitgraph
