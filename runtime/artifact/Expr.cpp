//===- Expr.cpp - Affine size expressions ---------------------------------===//

#include "runtime/artifact/Expr.h"

#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <vector>

namespace xlc::artifact {

namespace {

std::optional<std::uint64_t> mul(std::uint64_t x, std::uint64_t y) {
  std::uint64_t r;
  if (__builtin_mul_overflow(x, y, &r))
    return std::nullopt;
  return r;
}

std::optional<std::uint64_t> add(std::uint64_t x, std::uint64_t y) {
  std::uint64_t r;
  if (__builtin_add_overflow(x, y, &r))
    return std::nullopt;
  return r;
}

std::uint64_t checkedMul(std::uint64_t x, std::uint64_t y, const Expr &e) {
  if (auto r = mul(x, y))
    return *r;
  fail("expression {} times {} overflows u64", e.toString(), y);
}

} // namespace

std::string_view symbolName(Symbol symbol) {
  switch (symbol) {
  case Symbol::B:
    return "B";
  case Symbol::S:
    return "S";
  case Symbol::BS:
    return "BS";
  }
  return "?";
}

std::optional<Symbol> parseSymbol(std::string_view name) {
  if (name == "B")
    return Symbol::B;
  if (name == "S")
    return Symbol::S;
  if (name == "BS")
    return Symbol::BS;
  return std::nullopt;
}

std::optional<std::uint64_t> symbolValue(Symbol symbol, std::uint64_t batch, std::uint64_t seq) {
  switch (symbol) {
  case Symbol::B:
    return batch;
  case Symbol::S:
    return seq;
  case Symbol::BS:
    return mul(batch, seq);
  }
  return std::nullopt;
}

Expr Expr::normalized() const {
  if (div <= 1 || c % div || b % div || s % div || bs % div)
    return *this;
  return {c / div, b / div, s / div, bs / div, 1};
}

std::optional<std::uint64_t> Expr::tryEvaluate(std::uint64_t batch, std::uint64_t seq) const {
  if (div == 0)
    return std::nullopt;
  auto bTerm = mul(b, batch);
  auto sTerm = mul(s, seq);
  auto batchSeq = mul(batch, seq);
  auto bsTerm = batchSeq ? mul(bs, *batchSeq) : std::nullopt;
  // bs = 0 makes the B·S term 0 even when B·S itself overflows.
  if (bs == 0)
    bsTerm = 0;
  if (!bTerm || !sTerm || !bsTerm)
    return std::nullopt;
  auto sum = add(c, *bTerm);
  sum = sum ? add(*sum, *sTerm) : std::nullopt;
  sum = sum ? add(*sum, *bsTerm) : std::nullopt;
  if (!sum)
    return std::nullopt;
  // ceil without forming sum + div - 1, which could overflow.
  return *sum / div + (*sum % div != 0 ? 1 : 0);
}

std::uint64_t Expr::evaluate(std::uint64_t batch, std::uint64_t seq, std::string_view owner) const {
  if (div == 0)
    fail("{}: expression {} divides by zero", owner, toString());
  if (auto value = tryEvaluate(batch, seq))
    return *value;
  fail("{}: {} overflows u64 at B={}, S={}", owner, toString(), batch, seq);
}

std::string Expr::toString() const {
  std::vector<std::string> terms;
  auto term = [&](std::uint64_t k, const char *symbol) {
    if (k == 0)
      return;
    terms.push_back(k == 1 ? std::string(symbol) : fmt::format("{}*{}", k, symbol));
  };
  if (c != 0)
    terms.push_back(fmt::format("{}", c));
  term(b, "B");
  term(s, "S");
  term(bs, "B*S");
  std::string sum = terms.empty() ? "0" : fmt::format("{}", fmt::join(terms, " + "));
  if (div == 1)
    return sum;
  return terms.size() > 1 ? fmt::format("ceil(({})/{})", sum, div)
                          : fmt::format("ceil({}/{})", sum, div);
}

Expr operator+(const Expr &lhs, const Expr &rhs) {
  Expr l = lhs.normalized(), r = rhs.normalized();
  if (l.div != 1 || r.div != 1)
    fail("cannot add {} and {}: a sum of ceil-divided expressions is not affine", lhs.toString(),
         rhs.toString());
  auto sum = [&](std::uint64_t x, std::uint64_t y) {
    if (auto v = add(x, y))
      return *v;
    fail("{} + {} overflows u64", lhs.toString(), rhs.toString());
  };
  return {sum(l.c, r.c), sum(l.b, r.b), sum(l.s, r.s), sum(l.bs, r.bs), 1};
}

Expr operator*(const Expr &lhs, std::uint64_t factor) {
  Expr e = lhs.normalized();
  if (e.div != 1)
    fail("cannot multiply {} by {}: the product of a ceil-divided expression is not affine",
         lhs.toString(), factor);
  return {checkedMul(e.c, factor, lhs), checkedMul(e.b, factor, lhs), checkedMul(e.s, factor, lhs),
          checkedMul(e.bs, factor, lhs), 1};
}

Expr operator*(std::uint64_t factor, const Expr &rhs) { return rhs * factor; }

Expr ceilDiv(const Expr &e, std::uint64_t d) {
  if (d == 0)
    fail("cannot divide {} by zero", e.toString());
  Expr r = e;
  r.div = checkedMul(e.div, d, e);
  return r.normalized();
}

} // namespace xlc::artifact
