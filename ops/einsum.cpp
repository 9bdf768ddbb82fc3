// einsum through the differentiable ops: each operand first loses its repeated subscripts (a
// diagonal) and the subscripts nothing else needs (a sum); then operands are contracted pairwise,
// left to right, each pair as one batched matmul (batch, kept-left, kept-right and summed subscripts
// permuted into [batch, left, summed] @ [batch, summed, right]); the result is permuted to the output.
#include "ops/einsum.h"

#include <algorithm>
#include <map>

#include "ops/copy_ops.h"
#include "ops/linalg.h"
#include "ops/rearrange.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

namespace weft {
namespace {

// An operand with one subscript per dim (ellipsis dims get their own characters, below 'A').
struct Term {
  Tensor t;
  std::string subs;
};

std::vector<std::string> split_inputs(const std::string& lhs) {
  std::vector<std::string> out(1);
  for (char c : lhs) {
    if (c == ',') out.emplace_back();
    else if (c != ' ') out.back() += c;
  }
  return out;
}

// Replaces "..." by `count` ellipsis characters (the last ones, right-aligned as broadcasting is) and
// checks the letters.
std::string expand_ellipsis(const std::string& s, int64_t rank, int64_t ellipsis_rank, const std::string& eq) {
  std::string out;
  size_t dots = s.find("...");
  WEFT_CHECK(dots == std::string::npos || s.find("...", dots + 3) == std::string::npos, "einsum: more than one "
             "ellipsis in \"", s, "\" of \"", eq, "\"");
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == dots) {
      int64_t count = rank < 0 ? ellipsis_rank : rank - static_cast<int64_t>(s.size() - 3);
      WEFT_CHECK(count >= 0, "einsum: \"", s, "\" names more dims than its operand has (", rank, ") in \"", eq, "\"");
      for (int64_t k = ellipsis_rank - count; k < ellipsis_rank; ++k) out += static_cast<char>(1 + k);
      i += 2;
      continue;
    }
    WEFT_CHECK(std::isalpha(static_cast<unsigned char>(s[i])), "einsum: subscripts must be letters but \"", eq,
               "\" has '", s[i], "'");
    out += s[i];
  }
  return out;
}

// Takes diagonals for subscripts repeated within one operand.
Term diagonalize(Term term) {
  for (size_t i = 0; i < term.subs.size(); ++i) {
    size_t j = term.subs.find(term.subs[i], i + 1);
    while (j != std::string::npos) {
      WEFT_CHECK(term.t.size(i) == term.t.size(j), "einsum: subscript '", term.subs[i], "' repeats over dims of sizes ",
                 term.t.size(i), " and ", term.t.size(j));
      term.t = diagonal(term.t, 0, static_cast<int64_t>(i), static_cast<int64_t>(j));  // moved last
      std::string rest;
      for (size_t k = 0; k < term.subs.size(); ++k)
        if (k != i && k != j) rest += term.subs[k];
      term.subs = rest + term.subs[i];
      return diagonalize(term);
    }
  }
  return term;
}

// Sums the subscripts of `term` that `needed` does not contain.
Term sum_unneeded(Term term, const std::string& needed) {
  Shape dims;
  std::string kept;
  for (size_t i = 0; i < term.subs.size(); ++i) {
    if (needed.find(term.subs[i]) == std::string::npos) dims.push_back(static_cast<int64_t>(i));
    else kept += term.subs[i];
  }
  if (dims.empty()) return term;
  return {sum(term.t, dims), kept};
}

int64_t size_of(const Term& term, char c) {
  return term.t.size(static_cast<int64_t>(term.subs.find(c)));
}

// Permutes term's dims into the order of `order` and merges them into groups of the given sizes.
Tensor arrange(const Term& term, const std::string& order, const Shape& groups) {
  Shape perm;
  for (char c : order) perm.push_back(static_cast<int64_t>(term.subs.find(c)));
  return reshape(permute(term.t, perm), groups);
}

// Contracts two terms, keeping the subscripts in `needed`.
Term contract(const Term& a, const Term& b, const std::string& needed, const std::string& eq) {
  std::string batch, left, right, summed;
  for (char c : a.subs) {
    bool in_b = b.subs.find(c) != std::string::npos, keep = needed.find(c) != std::string::npos;
    if (in_b) (keep ? batch : summed) += c;
    else left += c;  // summed away alone already unless needed
  }
  for (char c : b.subs)
    if (a.subs.find(c) == std::string::npos) right += c;
  // Shared subscripts, batch and summed alike, broadcast when one side has size 1 (as torch's).
  const std::string shared = batch + summed;
  Shape shared_shape;
  Term ea = a, eb = b;
  for (char c : shared) {
    int64_t sa = size_of(a, c), sb = size_of(b, c);
    WEFT_CHECK(sa == sb || sa == 1 || sb == 1, "einsum: subscript '", c, "' has sizes ", sa, " and ", sb,
               " in \"", eq, "\"");
    shared_shape.push_back(std::max(sa, sb));
  }
  const Shape batch_shape(shared_shape.begin(), shared_shape.begin() + static_cast<int64_t>(batch.size()));
  auto expand_shared = [&](Term& t) {
    Shape target = t.t.shape();
    for (size_t i = 0; i < shared.size(); ++i) target[t.subs.find(shared[i])] = shared_shape[i];
    t.t = expand(t.t, target);
  };
  expand_shared(ea), expand_shared(eb);
  auto product = [&](const Term& t, const std::string& s) {
    int64_t n = 1;
    for (char c : s) n *= size_of(t, c);
    return n;
  };
  int64_t nb = numel_of(batch_shape), nl = product(ea, left), nr = product(eb, right), ns = product(ea, summed);
  Tensor ta = arrange(ea, batch + left + summed, {nb, nl, ns});
  Tensor tb = arrange(eb, batch + summed + right, {nb, ns, nr});
  Shape out_shape = batch_shape;
  for (char c : left) out_shape.push_back(size_of(a, c));
  for (char c : right) out_shape.push_back(size_of(b, c));
  return {reshape(bmm(ta, tb), out_shape), batch + left + right};
}

}  // namespace

Tensor einsum(const std::string& equation, const TensorList& operands) {
  size_t arrow = equation.find("->");
  std::vector<std::string> inputs = split_inputs(equation.substr(0, arrow));
  WEFT_CHECK(inputs.size() == operands.size(), "einsum: \"", equation, "\" names ", inputs.size(),
             " operands but got ", operands.size());
  int64_t ellipsis_rank = 0;
  for (size_t i = 0; i < operands.size(); ++i) {
    detail::check_plain(operands[i], "einsum");
    if (inputs[i].find("...") != std::string::npos)
      ellipsis_rank = std::max<int64_t>(ellipsis_rank, operands[i].dim() - static_cast<int64_t>(inputs[i].size() - 3));
  }
  // Mixed dtypes promote, as torch's einsum does.
  DType common = operands.empty() ? kFloat32 : operands[0].dtype();
  for (const Tensor& t : operands) common = promote_types(common, t.dtype());
  std::vector<Term> terms;
  std::map<char, int> count;
  for (size_t i = 0; i < operands.size(); ++i) {
    std::string subs = expand_ellipsis(inputs[i], operands[i].dim(), ellipsis_rank, equation);
    WEFT_CHECK(static_cast<int64_t>(subs.size()) == operands[i].dim(), "einsum: \"", inputs[i], "\" names ",
               subs.size(), " dims but operand ", i, " has shape ", operands[i].shape());
    for (char c : subs) ++count[c];
    terms.push_back({operands[i].dtype() == common ? operands[i] : to_dtype(operands[i], common), subs});
  }
  std::string output;
  if (arrow == std::string::npos) {  // implicit: the ellipsis, then letters used once, in order
    for (auto [c, n] : count)
      if (c < 'A' || n == 1) output += c;
  } else {
    std::string rhs;
    for (char c : equation.substr(arrow + 2))
      if (c != ' ') rhs += c;
    output = expand_ellipsis(rhs, -1, ellipsis_rank, equation);
    for (char c : output)
      WEFT_CHECK(count.count(c) && std::count(output.begin(), output.end(), c) == 1, "einsum: output subscript '",
                 c, "' of \"", equation, "\" must appear once, and in an input");
  }
  // Reduce each operand alone, then contract left to right.
  auto needed_after = [&](size_t i, const std::string& extra) {
    std::string need = output + extra;
    for (size_t k = i + 1; k < terms.size(); ++k) need += terms[k].subs;
    return need;
  };
  Term acc = sum_unneeded(diagonalize(terms[0]), needed_after(0, ""));
  for (size_t i = 1; i < terms.size(); ++i) {
    Term next = diagonalize(terms[i]);
    next = sum_unneeded(next, needed_after(i, acc.subs));
    acc = sum_unneeded(acc, needed_after(i, next.subs));
    acc = contract(acc, next, needed_after(i, ""), equation);
  }
  acc = sum_unneeded(acc, output);
  Shape perm;
  for (char c : output) perm.push_back(static_cast<int64_t>(acc.subs.find(c)));
  return permute(acc.t, perm);
}

}  // namespace weft
