// The reductions against PyTorch 1.13 (tests/conformance/reduce.py).
#include <catch2/catch.hpp>

#include "framework/factories.h"
#include "ops/ops.h"
#include "tests/conformance/conformance.h"

namespace weft::test::conformance {
namespace {

std::vector<Tensor> two(std::pair<Tensor, Tensor> p) { return {std::move(p.first), std::move(p.second)}; }
std::vector<Tensor> boolean(bool b) { return {scalar_tensor(b, kBool)}; }
bool keep(const Args& a) { return a.kw_boolean("keepdim", false); }

const OpTable table = {
    {"sum", [](const Args& a) { return one(sum(a.tensor(0))); }},
    {"sum.dims", [](const Args& a) { return one(sum(a.tensor(0), a.ints(1), keep(a))); }},
    {"sum.dim", [](const Args& a) { return one(sum(a.tensor(0), a.integer(1), keep(a))); }},
    {"sum.method_dim", [](const Args& a) { return one(a.tensor(0).sum(a.integer(1))); }},
    {"mean", [](const Args& a) { return one(mean(a.tensor(0))); }},
    {"mean.dims", [](const Args& a) { return one(mean(a.tensor(0), a.ints(1), keep(a))); }},
    {"mean.dim", [](const Args& a) { return one(mean(a.tensor(0), a.integer(1), keep(a))); }},
    {"mean.method_dim", [](const Args& a) { return one(a.tensor(0).mean(a.integer(1))); }},
    {"prod", [](const Args& a) { return one(prod(a.tensor(0))); }},
    {"prod.dim", [](const Args& a) { return one(prod(a.tensor(0), a.integer(1), keep(a))); }},
    {"max", [](const Args& a) { return one(max(a.tensor(0))); }},
    {"min", [](const Args& a) { return one(min(a.tensor(0))); }},
    {"max.dim", [](const Args& a) { return two(max(a.tensor(0), a.integer(1), keep(a))); }},
    {"min.dim", [](const Args& a) { return two(min(a.tensor(0), a.integer(1), keep(a))); }},
    {"argmax", [](const Args& a) { return one(argmax(a.tensor(0))); }},
    {"argmin", [](const Args& a) { return one(argmin(a.tensor(0))); }},
    {"argmax.dim", [](const Args& a) { return one(argmax(a.tensor(0), a.integer(1), keep(a))); }},
    {"argmin.dim", [](const Args& a) { return one(argmin(a.tensor(0), a.integer(1), keep(a))); }},
    {"all", [](const Args& a) { return one(all(a.tensor(0))); }},
    {"any", [](const Args& a) { return one(any(a.tensor(0))); }},
    {"all.dim", [](const Args& a) { return one(all(a.tensor(0), a.integer(1), keep(a))); }},
    {"any.dim", [](const Args& a) { return one(any(a.tensor(0), a.integer(1), keep(a))); }},
    {"var", [](const Args& a) { return one(var(a.tensor(0))); }},
    {"std", [](const Args& a) { return one(weft::std(a.tensor(0))); }},
    {"var.dims",
     [](const Args& a) { return one(var(a.tensor(0), a.ints(1), a.kw_boolean("unbiased", true), keep(a))); }},
    {"std.dims",
     [](const Args& a) { return one(weft::std(a.tensor(0), a.ints(1), a.kw_boolean("unbiased", true), keep(a))); }},
    {"logsumexp", [](const Args& a) { return one(logsumexp(a.tensor(0), a.ints(1), keep(a))); }},
    {"norm", [](const Args& a) { return one(a.size() > 1 ? norm(a.tensor(0), a.real(1)) : norm(a.tensor(0))); }},
    {"norm.dims", [](const Args& a) { return one(norm(a.tensor(0), a.real(1), a.ints(2), keep(a))); }},
    {"norm.str",
     [](const Args& a) { return one(norm(a.tensor(0), a.string(1), a.size() > 2 ? a.ints(2) : Shape{}, keep(a))); }},
    {"equal", [](const Args& a) { return boolean(equal(a.tensor(0), a.tensor(1))); }},
    {"allclose",
     [](const Args& a) {
       return boolean(allclose(a.tensor(0), a.tensor(1), a.kw_real("rtol", 1e-5), a.kw_real("atol", 1e-8)));
     }},
    {"sum_to", [](const Args& a) { return one(sum_to(a.tensor(0), a.ints(1))); }},
};

TEST_CASE("reductions agree with PyTorch 1.13", "[torch]") {
  skip_without_torch();
  run_conformance(WEFT_TESTS_DIR "/conformance/reduce.py", table);
}

}  // namespace
}  // namespace weft::test::conformance
