#include "flat/flat_index.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "core/topk.hpp"
#include "filter/bitset_program.hpp"
#include "filter/exact_scan.hpp"
#include "flat/tile_scan.hpp"

namespace bitgraph {

template <class Store>
size_t FlatIndexT<Store>::add(const Query* vectors, const int64_t* labels, size_t n) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  const size_t first = n_slots_;
  check_capacity(first + n);
  store_.make_owned();
  store_.resize(first + n);
  std::vector<int64_t> replaced(n);
  append_labels(labels, n, replaced.data());
  for (size_t i = 0; i < n; ++i) store_.set(first + i, vectors + i * store_.add_width());
  if constexpr (Store::kCodes) blocks_.repack(store_, first, first + n);
  n_slots_ = first + n;
  return n;
}

namespace {

// Keeps the admissible rows of one query's distances to rows [begin, begin + n).
template <class Admissible>
inline void collect(const float* dists, size_t begin, size_t n, const Admissible& admissible,
                    TopK& top) {
  collect_rows(dists, nullptr, begin, n, admissible, top);
}

}  // namespace

template <class Store>
void FlatIndexT<Store>::search(const Query* queries, size_t nq, size_t k, size_t threads,
                       const SlotFilter* filter, int64_t* out_labels, float* out_dists) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  if (nq == 0) return;
  if (threads < 1) threads = 1;
  auto admissible = [&](uint32_t slot) {
    return !deleted_[slot] && (!filter || filter->allows(slot));
  };
  const size_t dim = store_.query_width();
  auto write_results = [&](TopK& top, size_t qi) {
    const std::vector<Scored>& found = top.sorted();
    int64_t* ol = out_labels + qi * k;
    float* od = out_dists + qi * k;
    for (size_t j = 0; j < k; ++j) {
      ol[j] = j < found.size() ? labels_[found[j].id] : -1;
      od[j] = j < found.size() ? found[j].dist : std::numeric_limits<float>::infinity();
    }
  };
  const size_t per_thread = (nq + threads - 1) / threads;

  if constexpr (Store::kCodes) {
    if (blocks_.enabled) {
      std::vector<TopK> tops(nq);
      for (TopK& top : tops) top.reset(k);
      code_scan(blocks_, n_slots_, queries, store_.code_layout(), nq, threads, admissible, tops);
      for (size_t qi = 0; qi < nq; ++qi) write_results(tops[qi], qi);
      return;
    }
  } else if (use_tiles(store_, nq, threads)) {
    // Batches: the transposed-tile kernels, each query's k found rescored below.
    std::vector<TopK> tops(nq);
    for (TopK& top : tops) top.reset(k);
    tile_scan(store_, nullptr, n_slots_, queries, nq, threads, admissible, tops);
    write_rescored(store_, tops, queries, k, labels_.data(), threads, out_labels, out_dists);
    return;
  }

  // Few queries: a block of rows small enough to stay in L2 is scored against a block of
  // queries before moving on, so each row is read from memory once per query block. Single
  // queries scan the whole store at memory bandwidth.
  const size_t row_bytes = store_.row_bytes();
  const size_t rows_per_block = std::clamp<size_t>((128u << 10) / row_bytes, 64, 4096);
  const size_t queries_per_block = std::clamp<size_t>(per_thread, 1, 16);
  const size_t n_query_blocks = (nq + queries_per_block - 1) / queries_per_block;
  parallel_for(n_query_blocks, threads, 1, [&](size_t block, size_t) {
    const size_t q0 = block * queries_per_block;
    const size_t q1 = std::min(nq, q0 + queries_per_block);
    std::vector<float> dists(rows_per_block);
    std::vector<TopK> tops(q1 - q0);
    for (TopK& top : tops) top.reset(k);
    for (size_t begin = 0; begin < n_slots_; begin += rows_per_block) {
      const size_t n = std::min(rows_per_block, n_slots_ - begin);
      for (size_t qi = q0; qi < q1; ++qi) {
        store_.distances_range(queries + qi * dim, begin, n, dists.data());
        collect(dists.data(), begin, n, admissible, tops[qi - q0]);
      }
    }
    for (size_t qi = q0; qi < q1; ++qi) write_results(tops[qi - q0], qi);
  });
}

template <class Store>
void FlatIndexT<Store>::search_filtered(const Query* queries, size_t nq, size_t k, size_t threads,
                                const SlotFilter* filters, const size_t* group_offsets,
                                size_t n_filters, int64_t* out_labels, float* out_dists,
                                int8_t* out_plans, int64_t* out_scored) const {
  const size_t dim = store_.query_width();
  std::fill(out_plans, out_plans + nq, int8_t(FilterPlan::kExact));
  std::vector<SlotFilter> fs(filters, filters + n_filters);
  std::vector<uint32_t> filter_of(nq);
  std::vector<uint32_t> one_by_one;  // queries scanned one at a time (gathering matches)
  for (size_t g = 0; g < n_filters; ++g) {
    const size_t q0 = group_offsets[g], q1 = group_offsets[g + 1];
    SlotFilter& f = fs[g];
    size_t n_slots;
    {
      std::shared_lock<std::shared_mutex> shared(buffers_mu_);
      n_slots = n_slots_;
      if (f.count == SlotFilter::kUnknownCount)
        f.count = popcount_words(f.bits, std::min(f.words, bitset_words(n_slots_)));
    }
    std::fill(out_scored + q0, out_scored + q1, int64_t(f.count));
    // Broad filters: the full scan (tile kernels for batches) beats gathering a large share
    // of the rows one by one.
    if (f.count * 8 > n_slots) {
      search(queries + q0 * dim, q1 - q0, k, threads, &f, out_labels + q0 * k,
             out_dists + q0 * k);
      continue;
    }
    if constexpr (!Store::kCodes) {
      if (use_tiles(store_, q1 - q0, threads)) {
        std::shared_lock<std::shared_mutex> shared(buffers_mu_);
        exact_scan_tiled(store_, deleted_.data(), n_slots_, f, queries + q0 * dim, q1 - q0, k,
                         threads, labels_.data(), out_labels + q0 * k, out_dists + q0 * k);
        continue;
      }
    }
    for (size_t i = q0; i < q1; ++i) {
      filter_of[i] = uint32_t(g);
      one_by_one.push_back(uint32_t(i));
    }
  }
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  parallel_for(one_by_one.size(), std::max<size_t>(1, threads), 1, [&](size_t j, size_t) {
    thread_local std::vector<uint32_t> ids;
    thread_local std::vector<float> dists;
    const size_t qi = one_by_one[j];
    const SlotFilter& f = fs[filter_of[qi]];
    TopK top;
    top.reset(k);
    exact_scan_bitset(store_, deleted_.data(), n_slots_, f.bits, f.words, queries + qi * dim,
                      top, ids, dists);
    const auto& found = top.sorted();
    for (size_t j2 = 0; j2 < k; ++j2) {
      out_labels[qi * k + j2] = j2 < found.size() ? labels_[found[j2].id] : -1;
      out_dists[qi * k + j2] =
          j2 < found.size() ? found[j2].dist : std::numeric_limits<float>::infinity();
    }
  });
}

template <class Store>
void FlatIndexT<Store>::borrow_state(const uint8_t* rows, const int64_t* labels, const uint8_t* deleted,
                             size_t n_slots) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  store_.borrow(rows, n_slots);
  if constexpr (Store::kCodes) blocks_.repack(store_, 0, n_slots);
  borrow_slots(labels, deleted, n_slots);
}

template class FlatIndexT<RowStore>;
template class FlatIndexT<CodeStore>;

}  // namespace bitgraph
