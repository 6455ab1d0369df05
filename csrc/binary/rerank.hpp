// Exact re-ranking of code-search candidates with float32 vectors ("bi-granular" retrieval).
// The vectors may be a memory map of a file: candidates are read in slot order so a query's
// page faults walk the file forwards.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/types.hpp"

namespace bitgraph {

// For each query i: candidates slots[i*n_cand .. +n_cand) (negative or >= n_vectors: skipped)
// carrying labels[...]; writes the k closest by exact float distance (l2: squared euclidean,
// ip: -dot) to out_labels / out_dists (k per query, padded with -1 / +inf).
void rerank(const float* queries, size_t nq, size_t dim, Metric metric, const float* vectors,
            size_t n_vectors, const int64_t* slots, const int64_t* labels, size_t n_cand,
            size_t k, size_t threads, int64_t* out_labels, float* out_dists);

}  // namespace bitgraph
