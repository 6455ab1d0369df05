// Exact k-NN over the slots set in a bitset: the planner's path for selective filters.
// Matching slots are gathered a block at a time and scored with the store's gather kernel
// (which prefetches rows), so the cost is proportional to the matches, not to the index.
#pragma once
#include <cstdint>
#include <vector>

#include "core/topk.hpp"
#include "filter/planner.hpp"
#include "flat/tile_scan.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph {

// Pushes every slot whose bit is set and that is not deleted into `top`. Returns the number
// of slots scored. `ids` / `dists` are scratch buffers.
template <class Store>
inline size_t exact_scan_bitset(const Store& store, const uint8_t* deleted,
                                size_t n_slots, const uint64_t* bits, size_t words,
                                const typename Store::Query* q, TopK& top, std::vector<uint32_t>& ids,
                                std::vector<float>& dists) {
  constexpr size_t kBlock = 256;
  if (ids.size() < kBlock + 64) ids.resize(kBlock + 64);
  if (dists.size() < kBlock + 64) dists.resize(kBlock + 64);
  size_t m = 0, scored = 0;
  auto flush = [&] {
    store.distances(q, ids.data(), m, dists.data());
    for (size_t j = 0; j < m; ++j) top.push(dists[j], ids[j]);
    scored += m;
    m = 0;
  };
  const size_t n_words = std::min(words, (n_slots + 63) / 64);
  for (size_t w = 0; w < n_words; ++w) {
    uint64_t word = bits[w];
    while (word) {
      const uint32_t slot = uint32_t(w * 64 + size_t(__builtin_ctzll(word)));
      word &= word - 1;
      if (slot < n_slots && !deleted[slot]) ids[m++] = slot;
    }
    if (m >= kBlock) flush();
  }
  if (m) flush();
  return scored;
}

// Exact k-NN of a batch of nq queries sharing `filter`, by one tiled pass over its matching
// live slots (rescored exactly); writes rows of k. Returns the number of slots scanned.
inline size_t exact_scan_tiled(const RowStore& store, const uint8_t* deleted, size_t n_slots,
                               const SlotFilter& filter, const float* queries, size_t nq,
                               size_t k, size_t threads, const int64_t* labels,
                               int64_t* out_labels, float* out_dists) {
  const std::vector<uint32_t> rows =
      set_slots(filter.bits, filter.words, n_slots, deleted, filter.count);
  std::vector<TopK> tops(nq);
  for (TopK& top : tops) top.reset(k);
  tile_scan(store, rows.data(), rows.size(), queries, nq, threads,
            [](uint32_t) { return true; }, tops);
  write_rescored(store, tops, queries, k, labels, threads, out_labels, out_dists);
  return rows.size();
}

}  // namespace bitgraph
