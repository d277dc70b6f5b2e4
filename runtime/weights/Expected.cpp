//===- Expected.cpp - Checking a checkpoint against the tensors a model needs ===//

#include "runtime/weights/Expected.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"
#include "runtime/weights/Checkpoint.h"

#include <algorithm>
#include <map>

namespace xlc::weights {

namespace {

constexpr std::size_t kMaxListedProblems = 40;

std::string describe(const ExpectedTensor &e) {
  return fmt::format("{} {}", dtypeListName(e.dtypes), shapeString(e.shape));
}

std::string describe(const TensorInfo &t) {
  return fmt::format("{} {}", dtypeName(t.dtype), shapeString(t.shape));
}

} // namespace

std::uint64_t elementCount(std::span<const std::int64_t> shape) {
  std::uint64_t n = 1;
  for (std::int64_t extent : shape)
    n *= static_cast<std::uint64_t>(extent);
  return n;
}

std::uint64_t parameterCount(std::span<const ExpectedTensor> expected) {
  std::uint64_t sum = 0;
  for (const ExpectedTensor &e : expected)
    if (!e.optional)
      sum += elementCount(e.shape);
  return sum;
}

std::vector<std::string> findTensorProblems(std::span<const TensorInfo> actual,
                                            std::span<const ExpectedTensor> expected,
                                            bool allowExtra) {
  // Keyed by name so the report comes out in name order whatever the input order.
  std::map<std::string_view, std::vector<std::string>> problems;
  std::map<std::string_view, const TensorInfo *> present;
  for (const TensorInfo &t : actual)
    present.emplace(t.name, &t);
  std::map<std::string_view, const ExpectedTensor *> wanted;
  for (const ExpectedTensor &e : expected) {
    if (!wanted.emplace(e.name, &e).second) {
      problems[e.name].push_back(fmt::format(
          "tensor {} is expected twice (the expectation list is wrong)", json::quoteText(e.name)));
      continue;
    }
    auto it = present.find(e.name);
    if (it == present.end()) {
      if (!e.optional)
        problems[e.name].push_back(
            fmt::format("missing tensor {} (expected {})", json::quoteText(e.name), describe(e)));
      continue;
    }
    const TensorInfo &t = *it->second;
    bool dtypeOk =
        e.dtypes.empty() || std::find(e.dtypes.begin(), e.dtypes.end(), t.dtype) != e.dtypes.end();
    bool shapeOk = t.shape == e.shape;
    if (!dtypeOk && !shapeOk)
      problems[e.name].push_back(fmt::format("tensor {} is {}, expected {}",
                                             json::quoteText(e.name), describe(t), describe(e)));
    else if (!shapeOk)
      problems[e.name].push_back(fmt::format("tensor {} has shape {}, expected {}",
                                             json::quoteText(e.name), shapeString(t.shape),
                                             shapeString(e.shape)));
    else if (!dtypeOk)
      problems[e.name].push_back(fmt::format("tensor {} has dtype {}, expected {}",
                                             json::quoteText(e.name), dtypeName(t.dtype),
                                             dtypeListName(e.dtypes)));
  }
  if (!allowExtra)
    for (const auto &[name, t] : present)
      if (!wanted.count(name))
        problems[name].push_back(
            fmt::format("unexpected tensor {} ({})", json::quoteText(name), describe(*t)));

  std::vector<std::string> out;
  for (auto &[name, list] : problems)
    for (std::string &p : list)
      out.push_back(std::move(p));
  return out;
}

void checkTensors(std::span<const TensorInfo> actual, std::string_view source,
                  std::span<const ExpectedTensor> expected, std::string_view against,
                  bool allowExtra) {
  std::vector<std::string> problems = findTensorProblems(actual, expected, allowExtra);
  if (problems.empty())
    return;
  std::string message = fmt::format("{} does not match {}: {} problem{}", source, against,
                                    problems.size(), problems.size() == 1 ? "" : "s");
  for (std::size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i)
    message += "\n  - " + problems[i];
  if (problems.size() > kMaxListedProblems)
    message += fmt::format("\n  ... and {} more", problems.size() - kMaxListedProblems);
  throw Error(message);
}

void checkTensors(const Checkpoint &checkpoint, std::span<const ExpectedTensor> expected,
                  std::string_view against, bool allowExtra) {
  checkTensors(checkpoint.tensors(), fmt::format("checkpoint '{}'", checkpoint.path()), expected,
               against, allowExtra);
}

} // namespace xlc::weights
