// One search call, whatever it asks for: the queries, k, ef and threads, and optionally the
// compiled filters (python/bitgraph/attributes.py) with the planner's settings. run_search
// answers it in one native call: evaluates the filters into bitsets, groups the queries by
// filter, lets the index walk or scan each group, finishes short walks exactly and pads the
// rows to k. Index is HnswIndex or FlatIndex (the same member functions).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "filter/bitset_program.hpp"
#include "filter/planner.hpp"

namespace bitgraph {

// The compiled filters of one call: filter f is the program ops[op_offsets[f], op_offsets[f+1])
// (rows of (code, begin, end)), all reading the shared entries and loads; `limit` is the number
// of slots whose attributes are recorded. filter_of[i] names query i's filter (-1: none);
// a null filter_of gives every query filter 0.
struct FilterPrograms {
  const int64_t* ops = nullptr;
  size_t n_ops = 0;
  const int64_t* op_offsets = nullptr;
  size_t n_filters = 0;
  const int32_t* entries = nullptr;
  size_t n_entries = 0;
  const uint64_t* loads = nullptr;
  size_t n_loads = 0;
  size_t limit = 0;
  const int32_t* filter_of = nullptr;
};

// Q: the index's query type (float32 values, or uint8 code bytes).
template <class Q>
struct SearchRequestOf {
  const Q* queries = nullptr;  // nq rows of the index's query width
  size_t nq = 0;
  size_t k = 1;        // columns of the output rows (beyond the index: padded)
  size_t ef = 1;       // graph walks: raised to the candidates wanted; ignored by flat scans
  size_t threads = 1;
  const FilterPrograms* filters = nullptr;
  PlannerParams planner;
};

// Rows of k: labels (-1 padded), distances (+inf padded); with filters also the plan of
// each query (FilterPlan, kNone for a query without a filter) and the nodes it scored.
struct SearchOutput {
  int64_t* labels;
  float* dists;
  int8_t* plans = nullptr;
  int64_t* scored = nullptr;
};

namespace detail {

// Queries `rows` of `src` (row width `width`) gathered into `dst`.
template <class T>
void gather_rows(const T* src, size_t width, const std::vector<uint32_t>& rows,
                 std::vector<T>& dst) {
  dst.resize(rows.size() * width);
  for (size_t j = 0; j < rows.size(); ++j)
    std::memcpy(dst.data() + j * width, src + size_t(rows[j]) * width, width * sizeof(T));
}

template <class T>
void scatter_rows(const T* src, size_t width, const std::vector<uint32_t>& rows, T* dst) {
  for (size_t j = 0; j < rows.size(); ++j)
    std::memcpy(dst + size_t(rows[j]) * width, src + j * width, width * sizeof(T));
}

}  // namespace detail

// Finishes exactly, in place, the unfiltered queries whose walk found fewer than
// min(k, live items) results: items the graph does not reach (or a walk lost among
// tombstones) must not silently go missing. A walk returns sorted rows padded at the end,
// so a short row has -1 where the last wanted result should be. (Filtered queries have the
// planner's own guarantee.) `rows`: the unfiltered queries of a filtered call, null: all.
template <class Index>
void complete_short(const Index& index, const SearchRequestOf<typename Index::Query>& req,
                    const std::vector<uint32_t>* rows, size_t kk, size_t ef, int64_t* labels,
                    float* dists) {
  const size_t want = std::min(kk, index.size());
  if (want == 0) return;
  std::vector<uint32_t> short_rows;
  auto check = [&](uint32_t i) {
    if (labels[size_t(i) * kk + want - 1] < 0) short_rows.push_back(i);
  };
  if (rows) {
    for (uint32_t i : *rows) check(i);
  } else {
    for (size_t i = 0; i < req.nq; ++i) check(uint32_t(i));
  }
  if (short_rows.empty()) return;
  // Every live slot (NOT of the empty set), scanned exactly.
  const int64_t ops[6] = {kOpScatter, 0, 0, kOpNot, 0, 0};
  const size_t n_slots = index.n_slots();
  std::vector<uint64_t> bits(std::max<size_t>(1, bitset_words(n_slots)));
  SlotFilter all;
  all.bits = bits.data();
  all.words = bitset_words(n_slots);
  all.count = index.evaluate_filter(ops, 2, nullptr, 0, nullptr, 0, n_slots, bits.data());
  const size_t width = index.query_width(), m = short_rows.size();
  std::vector<typename Index::Query> q;
  detail::gather_rows(req.queries, width, short_rows, q);
  std::vector<int64_t> l(m * kk);
  std::vector<float> d(m * kk);
  std::vector<int8_t> p(m);
  std::vector<int64_t> s(m);
  std::vector<SlotFilter> filters(1, all);
  const size_t offsets[2] = {0, m};
  index.search_filtered(q.data(), m, kk, ef, req.threads, filters.data(), offsets, 1,
                        exact_planner(), l.data(), d.data(), p.data(), s.data());
  detail::scatter_rows(l.data(), kk, short_rows, labels);
  detail::scatter_rows(d.data(), kk, short_rows, dists);
}


// Answers `req` into `out` with `index` (see the top of this file).
template <class Index>
void run_search(const Index& index, const SearchRequestOf<typename Index::Query>& req,
                const SearchOutput& out) {
  const size_t nq = req.nq, k = req.k, width = index.query_width();
  const size_t n_slots = index.n_slots();
  // No query has more results than the index has slots: work with at most that many and pad.
  const size_t kk = std::max<size_t>(1, std::min(k, n_slots));
  const size_t ef = std::min(std::max(req.ef, kk), std::max(kk, n_slots));
  const bool narrow = kk < k;
  std::vector<int64_t> narrow_labels;
  std::vector<float> narrow_dists;
  int64_t* labels = out.labels;
  float* dists = out.dists;
  if (narrow) {
    narrow_labels.resize(nq * kk);
    narrow_dists.resize(nq * kk);
    labels = narrow_labels.data();
    dists = narrow_dists.data();
  }
  std::vector<uint32_t> unfiltered;  // queries without a filter, when some have one
  const FilterPrograms* fp = req.filters;
  if (out.plans) std::fill(out.plans, out.plans + nq, int8_t(FilterPlan::kNone));
  if (out.scored) std::fill(out.scored, out.scored + nq, int64_t(0));
  if (!fp || fp->n_filters == 0) {
    index.search_rows(req.queries, nq, kk, ef, req.threads, labels, dists);
  } else {
    const size_t words = bitset_words(std::min(fp->limit, n_slots));
    std::vector<uint64_t> bits(std::max<size_t>(1, fp->n_filters * words));
    std::vector<SlotFilter> filters(fp->n_filters);
    for (size_t f = 0; f < fp->n_filters; ++f) {
      const int64_t begin = fp->op_offsets[f], end = fp->op_offsets[f + 1];
      filters[f].bits = bits.data() + f * words;
      filters[f].words = words;
      filters[f].count = index.evaluate_filter(fp->ops + 3 * begin, size_t(end - begin),
                                               fp->entries, fp->n_entries, fp->loads,
                                               fp->n_loads, fp->limit, bits.data() + f * words);
    }
    // Queries grouped by filter (a counting sort keeps their order within a group).
    std::vector<size_t> offsets(fp->n_filters + 1, 0);
    std::vector<uint32_t> order;
    if (fp->filter_of) {
      for (size_t i = 0; i < nq; ++i) {
        const int32_t f = fp->filter_of[i];
        if (f < 0) unfiltered.push_back(uint32_t(i));
        else ++offsets[size_t(f) + 1];
      }
      for (size_t f = 0; f < fp->n_filters; ++f) offsets[f + 1] += offsets[f];
      order.resize(offsets[fp->n_filters]);
      std::vector<size_t> next(offsets.begin(), offsets.end() - 1);
      for (size_t i = 0; i < nq; ++i)
        if (fp->filter_of[i] >= 0) order[next[size_t(fp->filter_of[i])]++] = uint32_t(i);
    } else {
      std::fill(offsets.begin() + 1, offsets.end(), nq);
    }
    const bool identity = order.empty() && unfiltered.empty();
    if (identity) {
      index.search_filtered(req.queries, nq, kk, ef, req.threads, filters.data(),
                            offsets.data(), filters.size(), req.planner, labels, dists,
                            out.plans, out.scored);
    } else {
      std::vector<typename Index::Query> q;
      detail::gather_rows(req.queries, width, order, q);
      const size_t m = order.size();
      std::vector<int64_t> l(m * kk);
      std::vector<float> d(m * kk);
      std::vector<int8_t> p(m);
      std::vector<int64_t> s(m);
      index.search_filtered(q.data(), m, kk, ef, req.threads, filters.data(), offsets.data(),
                            filters.size(), req.planner, l.data(), d.data(), p.data(),
                            s.data());
      detail::scatter_rows(l.data(), kk, order, labels);
      detail::scatter_rows(d.data(), kk, order, dists);
      detail::scatter_rows(p.data(), 1, order, out.plans);
      detail::scatter_rows(s.data(), 1, order, out.scored);
      if (!unfiltered.empty()) {
        detail::gather_rows(req.queries, width, unfiltered, q);
        l.resize(unfiltered.size() * kk);
        d.resize(unfiltered.size() * kk);
        index.search_rows(q.data(), unfiltered.size(), kk, ef, req.threads, l.data(), d.data());
        detail::scatter_rows(l.data(), kk, unfiltered, labels);
        detail::scatter_rows(d.data(), kk, unfiltered, dists);
      }
    }
  }
  complete_short(index, req, fp ? (fp->n_filters ? &unfiltered : nullptr) : nullptr, kk, ef,
                 labels, dists);
  if (narrow) {
    for (size_t i = 0; i < nq; ++i) {
      int64_t* ol = out.labels + i * k;
      float* od = out.dists + i * k;
      std::copy(labels + i * kk, labels + (i + 1) * kk, ol);
      std::copy(dists + i * kk, dists + (i + 1) * kk, od);
      std::fill(ol + kk, ol + k, int64_t(-1));
      std::fill(od + kk, od + k, std::numeric_limits<float>::infinity());
    }
  }
}

}  // namespace bitgraph
