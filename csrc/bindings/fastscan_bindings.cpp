// Fast-scan SDC kernels (csrc/binary/fastscan.hpp) as module functions: the Python side packs
// codes into 32-document blocks once and scans them per query. Thin glue: checks shapes,
// releases the GIL around the kernels.
#include <string>

#include "binary/fastscan.hpp"
#include "bindings/common.hpp"

namespace bitgraph::bindings {

namespace {

size_t code_row_bytes(size_t planes, size_t code_dim) {
  require(planes >= 1 && planes <= 4,
          "fast-scan SDC supports 1 to 4 planes, got " + std::to_string(planes));
  require(code_dim >= 1, "code_dim must be >= 1");
  return planes * ((code_dim + 63) / 64) * 8;
}

// The blocks holding the first n documents: a C-contiguous uint8 array of at least
// ceil(n / 32) blocks (any shape; fastscan_pack returns (n_blocks, block_bytes)).
CArray<uint8_t> as_blocks(const py::object& blocks, size_t n, size_t planes, size_t code_dim) {
  auto b = CArray<uint8_t>::ensure(blocks);
  require(bool(b), "blocks must be a uint8 array");
  const size_t need = (n + kFastscanBlockDocs - 1) / kFastscanBlockDocs *
                      fastscan_block_bytes(planes, code_dim);
  require(size_t(b.size()) >= need,
          "blocks hold " + std::to_string(b.size()) + " bytes but " + std::to_string(n) +
              " documents need " + std::to_string(need) + " (fastscan_pack with the same planes "
              "and code_dim)");
  return b;
}

}  // namespace

void bind_fastscan(py::module_& m) {
  m.def("fastscan_level", [] { return std::string(fastscan_level()); },
        "The instruction set the fast-scan SDC kernels run with.");
  m.def(
      "fastscan_pack",
      [](const py::object& codes, size_t planes, size_t code_dim) {
        const size_t rb = code_row_bytes(planes, code_dim);
        auto c = as_matrix<uint8_t>(codes, rb, "codes");
        const size_t n = c.shape(0);
        const size_t nblocks = (n + kFastscanBlockDocs - 1) / kFastscanBlockDocs;
        const size_t bb = fastscan_block_bytes(planes, code_dim);
        py::array_t<uint8_t> out({py::ssize_t(nblocks), py::ssize_t(bb)});
        {
          py::gil_scoped_release nogil;
          fastscan_pack(c.data(), n, planes, code_dim, out.mutable_data());
        }
        return out;
      },
      py::arg("codes"), py::arg("planes"), py::arg("code_dim"),
      "Packs code rows (n, planes * W * 8) into 32-document fast-scan blocks.");
  m.def(
      "fastscan_sdc",
      [](const py::object& blocks, size_t n, const py::object& query, size_t planes,
         size_t code_dim) {
        const size_t rb = code_row_bytes(planes, code_dim);
        auto b = as_blocks(blocks, n, planes, code_dim);
        auto q = as_vector<uint8_t>(query, "query");
        require(size_t(q.shape(0)) == rb,
                "query must be one code row of " + std::to_string(rb) + " bytes");
        py::array_t<uint32_t> out{py::ssize_t(n)};
        {
          py::gil_scoped_release nogil;
          fastscan_sdc(b.data(), n, q.data(), planes, code_dim, out.mutable_data());
        }
        return out;
      },
      py::arg("blocks"), py::arg("n"), py::arg("query"), py::arg("planes"), py::arg("code_dim"),
      "Exact SDC distances (uint32) from one query code to the first n packed documents.");
  m.def(
      "fastscan_sdc_batch",
      [](const py::object& blocks, size_t n, const py::object& queries, size_t planes,
         size_t code_dim) {
        const size_t rb = code_row_bytes(planes, code_dim);
        auto b = as_blocks(blocks, n, planes, code_dim);
        auto q = as_matrix<uint8_t>(queries, rb, "queries");
        const size_t nq = q.shape(0);
        py::array_t<uint32_t> out({py::ssize_t(nq), py::ssize_t(n)});
        {
          py::gil_scoped_release nogil;
          fastscan_sdc_batch(b.data(), n, q.data(), nq, planes, code_dim, out.mutable_data());
        }
        return out;
      },
      py::arg("blocks"), py::arg("n"), py::arg("queries"), py::arg("planes"),
      py::arg("code_dim"), "fastscan_sdc for each query row: uint32 (nq, n).");
}

}  // namespace bitgraph::bindings
