// Indexing against PyTorch 1.13 (tests/conformance/indexing.py): gather, index_select, and
// index / index_put_ over every kind of TensorIndex, read from the script's spelling of an index.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

using indexing::TensorIndex;

std::optional<int64_t> optional_int(const json& v) {
  return v.is_null() ? std::nullopt : std::optional<int64_t>(v.get<int64_t>());
}

// The script's index list: ints, None, "...", ["slice", start, stop, step], bools, tensors.
std::vector<TensorIndex> index_list(const Args& a, size_t i) {
  std::vector<TensorIndex> out;
  for (const json& item : a.raw(i)) {
    if (item.is_null()) out.emplace_back(indexing::None);
    else if (item.is_string()) out.emplace_back(indexing::Ellipsis);
    else if (item.is_boolean()) out.emplace_back(item.get<bool>());
    else if (item.is_number_integer()) out.emplace_back(item.get<int64_t>());
    else if (item.is_array())
      out.emplace_back(indexing::Slice(optional_int(item[1]), optional_int(item[2]), optional_int(item[3])));
    else out.emplace_back(a.tensor_of(item));
  }
  return out;
}

// x[index] = values on a clone, as the script does (the input itself is a leaf).
std::vector<Tensor> put(const Args& a, bool accumulate) {
  Tensor y = clone(a.tensor(0));
  index_put_(y, index_list(a, 1), a.tensor(2), accumulate);
  return one(y);
}

const OpTable table = {
    {"index_select", [](const Args& a) { return one(index_select(a.tensor(0), a.integer(1), a.tensor(2))); }},
    {"gather", [](const Args& a) { return one(gather(a.tensor(0), a.integer(1), a.tensor(2))); }},
    {"index", [](const Args& a) { return one(index(a.tensor(0), index_list(a, 1))); }},
    {"index_put_", [](const Args& a) { return put(a, false); }},
    {"index_put_.accumulate", [](const Args& a) { return put(a, true); }},
    {"index_put_.scalar",
     [](const Args& a) {
       Tensor y = clone(a.tensor(0));
       index_put_(y, index_list(a, 1), a.scalar(2));
       return one(y);
     }},
};

TEST_CASE("indexing agrees with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/indexing.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
