// Evaluates a compiled filter (python/bitgraph/attributes.py) into a bitset over slots.
//
// The program is postfix: SCATTER pushes a bitset with the slots entries[begin, end) set;
// AND / OR / NOT combine the top of the stack. Deleted slots are cleared at the end, so the
// result is exactly the live items a search may return.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

enum FilterOp : int64_t { kOpScatter = 0, kOpAnd = 1, kOpOr = 2, kOpNot = 3, kOpPrefixDiff = 4 };

inline size_t bitset_words(size_t n_slots) { return (n_slots + 63) / 64; }

// Writes bitset_words(n_slots) words to `out` and returns the number of bits set. `ops` holds
// n_ops rows of (code, begin, end); PREFIX_DIFF pushes loads[begin] & ~loads[end], rows of
// `loads` (n_loads bitsets of bitset_words(n_slots) words: a wide range leaf comes as the
// difference of two precomputed prefix bitmaps of its field, not as its slots). `deleted` (one byte per slot) may be null. Throws ValueError on
// a malformed program (stack underflow, ranges outside `entries` or `loads`).
size_t evaluate_filter(const int64_t* ops, size_t n_ops, const int32_t* entries,
                       size_t n_entries, const uint64_t* loads, size_t n_loads,
                       const uint8_t* deleted, size_t n_slots, uint64_t* out);

// Number of bits set in `words` words.
size_t popcount_words(const uint64_t* words, size_t n_words);

}  // namespace bitgraph
