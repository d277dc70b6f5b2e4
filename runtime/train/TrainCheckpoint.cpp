//===- TrainCheckpoint.cpp - Resumable training checkpoints ---------------===//

#include "runtime/train/TrainCheckpoint.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"
#include "runtime/support/MappedFile.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace xlc::train {
namespace {

namespace fs = std::filesystem;
using json::Json;
using json::ObjectReader;

constexpr const char *kFormat = "xlc-train-checkpoint";
constexpr std::uint64_t kVersion = 1;
constexpr const char *kMarker = "COMPLETE";

std::span<const std::uint8_t> bytesOf(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t *>(text.data()), text.size()};
}

/// fsync of a directory, so that the renames inside it are on disk.
void syncDirectory(const fs::path &dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  check(fd >= 0, "cannot open the directory '{}' to flush it: {}", dir.string(), std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  check(rc == 0, "cannot flush the directory '{}': {}", dir.string(), std::strerror(err));
}

std::uint64_t elements(const ParameterState &p) {
  std::uint64_t n = 1;
  for (std::int64_t d : p.shape) {
    check(d > 0, "parameter '{}': shape {} has a non-positive dimension", p.name,
          weights::shapeString(p.shape));
    n *= static_cast<std::uint64_t>(d);
  }
  return n;
}

std::span<const std::uint8_t> floatBytes(const std::vector<float> &v) {
  return {reinterpret_cast<const std::uint8_t *>(v.data()), v.size() * sizeof(float)};
}

void checkParameter(const ParameterState &p) {
  const std::uint64_t n = elements(p);
  check(p.dtype == weights::DType::F32 || p.dtype == weights::DType::BF16,
        "parameter '{}': working weights are f32 or bf16, got {}", p.name,
        weights::dtypeName(p.dtype));
  for (auto [what, v] : {std::pair{"weight", &p.weight}, {"exp_avg", &p.m}, {"exp_avg_sq", &p.v}})
    check(v->size() == n, "parameter '{}': {} has {} values for shape {} ({} elements)", p.name,
          what, v->size(), weights::shapeString(p.shape), n);
  check(p.master.empty() || p.master.size() == n,
        "parameter '{}': the master copy has {} values for {} elements", p.name, p.master.size(), n);
  check(p.momentDtype == weights::DType::F32 || p.momentDtype == weights::DType::BF16,
        "parameter '{}': moments are f32 or bf16, got {}", p.name,
        weights::dtypeName(p.momentDtype));
  auto bf16Exact = [&](const std::vector<float> &values, const char *what) {
    for (std::size_t i = 0; i < values.size(); ++i)
      check(weights::bf16ToF32(weights::f32ToBF16(values[i])) == values[i] ||
                values[i] != values[i],
            "parameter '{}': element {} ({}) of a bf16 {} is not a bf16 value", p.name, i,
            values[i], what);
  };
  if (p.dtype == weights::DType::BF16)
    bf16Exact(p.weight, "weight");
  if (p.momentDtype == weights::DType::BF16) {
    bf16Exact(p.m, "exp_avg");
    bf16Exact(p.v, "exp_avg_sq");
  }
}

/// |values| as the bytes of a |dtype| tensor (F32 as they are, BF16 rounded: callers checked
/// that they are bf16-exact).
std::vector<std::uint8_t> encode(const std::vector<float> &values, weights::DType dtype) {
  if (dtype == weights::DType::F32) {
    const std::span<const std::uint8_t> bytes = floatBytes(values);
    return {bytes.begin(), bytes.end()};
  }
  std::vector<std::uint8_t> out(values.size() * 2);
  for (std::size_t j = 0; j < values.size(); ++j) {
    const std::uint16_t b = weights::f32ToBF16(values[j]);
    std::memcpy(out.data() + 2 * j, &b, 2);
  }
  return out;
}

} // namespace

void writeTrainCheckpoint(const std::string &dir, std::span<const ParameterState> params,
                          const TrainerState &state, std::string_view configJson,
                          std::span<const ExtraFile> extraFiles) {
  check(!dir.empty(), "writeTrainCheckpoint: empty directory name");
  for (const ParameterState &p : params)
    checkParameter(p);
  for (const ExtraFile &f : extraFiles) {
    const bool own = f.name == "model.safetensors" || f.name == "optimizer.safetensors" ||
                     f.name == "trainer_state.json" || f.name == "config.json" ||
                     f.name == kMarker;
    check(!f.name.empty() && f.name != "." && f.name != ".." &&
              f.name.find('/') == std::string::npos && !own,
          "checkpoint '{}': the extra file name '{}' must be a plain file name other than the "
          "checkpoint's own files",
          dir, f.name);
  }
  const fs::path target(dir), tmp(dir + ".tmp"), prev(dir + ".prev");
  std::error_code ec;
  fs::remove_all(tmp, ec); // a leftover of an interrupted write is never a checkpoint
  fs::create_directories(tmp, ec);
  check(!ec, "cannot create the directory '{}': {}", tmp.string(), ec.message());

  // model.safetensors: the working weights in their dtype.
  std::vector<std::vector<std::uint8_t>> modelBytes(params.size());
  std::vector<weights::TensorToWrite> model;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const ParameterState &p = params[i];
    modelBytes[i] = encode(p.weight, p.dtype);
    model.push_back({p.name, p.dtype, p.shape, modelBytes[i]});
  }
  weights::writeSafetensors((tmp / "model.safetensors").string(), model, {{"format", "pt"}});
  modelBytes.clear();

  // optimizer.safetensors: the moments in their dtype, the master copies f32.
  std::vector<std::vector<std::uint8_t>> momentBytes;
  momentBytes.reserve(2 * params.size());
  std::vector<weights::TensorToWrite> optimizer;
  for (const ParameterState &p : params) {
    momentBytes.push_back(encode(p.m, p.momentDtype));
    optimizer.push_back({p.name + ".exp_avg", p.momentDtype, p.shape, momentBytes.back()});
    momentBytes.push_back(encode(p.v, p.momentDtype));
    optimizer.push_back({p.name + ".exp_avg_sq", p.momentDtype, p.shape, momentBytes.back()});
    if (!p.master.empty())
      optimizer.push_back({p.name + ".master", weights::DType::F32, p.shape, floatBytes(p.master)});
  }
  weights::writeSafetensors((tmp / "optimizer.safetensors").string(), optimizer,
                            {{"format", kFormat}});

  nlohmann::ordered_json doc;
  doc["format"] = kFormat;
  doc["version"] = kVersion;
  doc["step"] = state.step;
  doc["tokens_seen"] = state.tokensSeen;
  doc["stream"] = {{"epoch", state.stream.epoch}, {"index", state.stream.index}};
  doc["data_seed"] = state.dataSeed;
  doc["run"] = state.run;
  if (state.bestEvalStep > 0)
    doc["best_eval"] = {{"step", state.bestEvalStep}, {"loss", state.bestEvalLoss}};
  const std::string text = doc.dump(2) + "\n";
  writeFileAtomically((tmp / "trainer_state.json").string(), bytesOf(text));
  writeFileAtomically((tmp / "config.json").string(), bytesOf(configJson));
  for (const ExtraFile &f : extraFiles)
    writeFileAtomically((tmp / f.name).string(), bytesOf(f.contents));
  writeFileAtomically((tmp / kMarker).string(), bytesOf("xlc-train-checkpoint complete\n"));
  syncDirectory(tmp);

  // Replace: the previous checkpoint stays complete at <dir> or <dir>.prev at every moment.
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::remove_all(prev, ec);
  if (fs::exists(target)) {
    fs::rename(target, prev, ec);
    check(!ec, "cannot move the previous checkpoint '{}' aside: {}", dir, ec.message());
    syncDirectory(parent);
  }
  fs::rename(tmp, target, ec);
  check(!ec, "cannot rename '{}' to '{}': {}", tmp.string(), dir, ec.message());
  syncDirectory(parent);
  fs::remove_all(prev, ec);
}

TrainCheckpoint readTrainCheckpoint(const std::string &dir) {
  TrainCheckpoint out;
  fs::path root(dir);
  if (!fs::exists(root) && fs::exists(fs::path(dir + ".prev") / kMarker))
    root = dir + ".prev"; // a replace interrupted between its two renames
  out.directory = root.string();
  check(fs::is_directory(root), "'{}' is not a training checkpoint directory", dir);
  check(fs::exists(root / kMarker),
        "'{}' has no {} marker: the checkpoint was not completely written", root.string(),
        kMarker);

  const std::string statePath = (root / "trainer_state.json").string();
  const Json stateJson = json::parseStrictJson(readFile(statePath), "'" + statePath + "'", 16);
  ObjectReader r(stateJson, {statePath, ""});
  check(r.string("format") == kFormat, "{}: format is '{}', expected '{}'", statePath,
        r.string("format"), kFormat);
  const std::uint64_t version = r.u64("version");
  check(version == kVersion, "{}: version {} (this build reads version {})", statePath, version,
        kVersion);
  out.state.step = json::asI64(r.get("step"), r.field("step"));
  out.state.tokensSeen = r.u64("tokens_seen");
  {
    ObjectReader s(r.get("stream"), r.field("stream"));
    out.state.stream.epoch = s.u64("epoch");
    out.state.stream.index = s.u64("index");
    s.finish();
  }
  out.state.dataSeed = r.u64("data_seed");
  out.state.run = r.get("run");
  if (r.find("best_eval") != nullptr) {
    ObjectReader b(r.get("best_eval"), r.field("best_eval"));
    out.state.bestEvalStep = json::asI64(b.get("step"), b.field("step"));
    out.state.bestEvalLoss = json::asNumber(b.get("loss"), b.field("loss"));
    b.finish();
  }
  r.finish();
  out.configJson = readFile((root / "config.json").string());

  const weights::Checkpoint model = weights::Checkpoint::open((root / "model.safetensors").string());
  const weights::Checkpoint optimizer =
      weights::Checkpoint::open((root / "optimizer.safetensors").string());
  std::size_t optimizerTensors = 0;
  for (const weights::TensorInfo &info : model.tensors()) {
    ParameterState p;
    p.name = info.name;
    p.shape = info.shape;
    p.dtype = info.dtype;
    p.weight = model.readF32(info.name);
    auto moment = [&](const std::string &suffix, std::vector<float> &to, bool required) {
      const weights::TensorInfo *t = optimizer.find(info.name + suffix);
      if (!t) {
        check(!required, "{}: no '{}{}' for the model's tensor '{}'", optimizer.path(), info.name,
              suffix, info.name);
        return;
      }
      // exp_avg is f32, or bf16 in the low-memory mode; exp_avg_sq has exp_avg's dtype; a
      // master is f32.
      const bool first = suffix == ".exp_avg";
      const bool dtypeOk = first ? t->dtype == weights::DType::F32 ||
                                       t->dtype == weights::DType::BF16
                                 : t->dtype == (suffix == ".master" ? weights::DType::F32
                                                                    : p.momentDtype);
      check(t->shape == info.shape && dtypeOk, "{}: '{}{}' is {} {}, expected {} {}",
            optimizer.path(), info.name, suffix, weights::dtypeName(t->dtype),
            weights::shapeString(t->shape),
            first ? "f32 or bf16"
                  : weights::dtypeName(suffix == ".master" ? weights::DType::F32 : p.momentDtype),
            weights::shapeString(info.shape));
      if (first)
        p.momentDtype = t->dtype;
      to = optimizer.readF32(info.name + suffix);
      ++optimizerTensors;
    };
    moment(".exp_avg", p.m, true);
    moment(".exp_avg_sq", p.v, true); // the same dtype as exp_avg
    moment(".master", p.master, false);
    out.params.push_back(std::move(p));
  }
  check(optimizerTensors == optimizer.tensors().size(),
        "{}: {} tensors belong to no tensor of the model", optimizer.path(),
        optimizer.tensors().size() - optimizerTensors);
  return out;
}

} // namespace xlc::train
