// train_lstm: a character-level LSTM language model on the GPL's text, which every Debian system
// ships (base-files: /usr/share/common-licenses/GPL-3). The last 10% of the text is held out;
// training prints its progress, then a sample generated under InferenceModeGuard, and last
// "val loss: x.xxxx" (mean cross entropy per character, nats). Runs of kLearningSteps steps or more
// exit non-zero unless the model beats the held-out text's unigram entropy.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "weft.h"

using namespace weft;

namespace {

constexpr int64_t kEmbed = 32, kHidden = 128, kSeq = 64, kBatch = 32, kSampleChars = 240;
constexpr int kLearningSteps = 200;

int arg_int(int argc, char** argv, const std::string& flag, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == flag) return std::atoi(argv[i + 1]);
  return fallback;
}
std::string arg_str(int argc, char** argv, const std::string& flag, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == flag) return argv[i + 1];
  return fallback;
}

// The text as character ids, with the alphabet.
struct Corpus {
  std::string alphabet;
  std::vector<int64_t> ids;
};

Corpus read_corpus(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "train_lstm: cannot read %s (Debian's base-files ships it)\n", path.c_str());
    std::exit(2);
  }
  std::stringstream text;
  text << in.rdbuf();
  Corpus c;
  std::map<char, int64_t> index;
  for (char ch : text.str()) index.emplace(ch, 0);
  for (auto& [ch, id] : index) {
    id = static_cast<int64_t>(c.alphabet.size());
    c.alphabet.push_back(ch);
  }
  for (char ch : text.str()) c.ids.push_back(index[ch]);
  return c;
}

struct CharModel : nn::Module {
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;
  explicit CharModel(int64_t vocab) : Module("CharModel") {
    embed = register_module("embed", std::make_shared<nn::Embedding>(vocab, kEmbed));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(kEmbed, kHidden, nn::RNNOptions{.batch_first = true}));
    head = register_module("head", std::make_shared<nn::Linear>(kHidden, vocab));
  }
  // Logits (N, T, vocab) for ids (N, T), carrying the LSTM's state through `hx` ({h, c} or {}).
  Tensor forward(const Tensor& ids, TensorList& hx) {
    auto [y, h, c] = lstm->forward(embed->forward(ids), hx);
    hx = {h, c};
    return head->forward(y);
  }
};

// `batch` windows of kSeq + 1 characters from ids[begin, end): inputs and next-character targets.
std::pair<Tensor, Tensor> windows(const std::vector<int64_t>& ids, int64_t begin, int64_t end, int64_t batch,
                                  Generator& gen, bool random) {
  Tensor x = empty({batch, kSeq}, dtype(kInt64)), y = empty({batch, kSeq}, dtype(kInt64));
  int64_t* xp = x.data_ptr<int64_t>();
  int64_t* yp = y.data_ptr<int64_t>();
  const int64_t span = end - begin - kSeq - 1;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t start = begin + (random ? static_cast<int64_t>(gen.uniform() * double(span)) : b * span / batch);
    for (int64_t t = 0; t < kSeq; ++t) {
      xp[b * kSeq + t] = ids[start + t];
      yp[b * kSeq + t] = ids[start + t + 1];
    }
  }
  return {x, y};
}

double loss_of(CharModel& model, const Tensor& x, const Tensor& y) {
  TensorList hx;
  Tensor logits = model.forward(x, hx);
  return cross_entropy(reshape(logits, {-1, logits.size(2)}), reshape(y, {-1})).item<double>();
}

// The entropy of the characters of ids[begin, end) under their own frequencies: what a model that
// ignores context at best reaches.
double unigram_entropy(const std::vector<int64_t>& ids, int64_t begin, int64_t end) {
  std::map<int64_t, double> count;
  for (int64_t i = begin; i < end; ++i) count[ids[i]] += 1;
  double h = 0, n = double(end - begin);
  for (auto& [id, k] : count) h -= k / n * std::log(k / n);
  return h;
}

// kSampleChars characters continuing `prompt`, drawn at temperature 0.8 one step at a time.
std::string sample(CharModel& model, const Corpus& c, const std::string& prompt, Generator& gen) {
  InferenceModeGuard inference;
  TensorList hx;
  std::string out = prompt;
  Tensor logits;
  for (char ch : prompt) {
    Tensor id = full({1, 1}, int64_t(c.alphabet.find(ch)), dtype(kInt64));
    logits = model.forward(id, hx);
  }
  for (int64_t i = 0; i < kSampleChars; ++i) {
    Tensor probs = softmax(reshape(logits, {-1}) / 0.8, 0);
    int64_t next = multinomial(probs, 1, false, &gen).item<int64_t>();
    out.push_back(c.alphabet[static_cast<size_t>(next)]);
    logits = model.forward(full({1, 1}, next, dtype(kInt64)), hx);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = arg_int(argc, argv, "--steps", 1200);
  const int log_every = arg_int(argc, argv, "--log-every", 100);
  set_num_threads(arg_int(argc, argv, "--threads", 1));
  manual_seed(0);
  Generator gen(7);

  Corpus corpus = read_corpus(arg_str(argc, argv, "--text", "/usr/share/common-licenses/GPL-3"));
  const int64_t n = static_cast<int64_t>(corpus.ids.size()), split = n * 9 / 10;
  std::printf("%lld characters, alphabet of %zu; training on the first %lld, validating on the rest\n",
              static_cast<long long>(n), corpus.alphabet.size(), static_cast<long long>(split));
  auto model = std::make_shared<CharModel>(static_cast<int64_t>(corpus.alphabet.size()));
  std::cout << *model << std::endl;

  optim::Adam optimizer(model->parameters(), {.lr = 5e-3});
  optim::OneCycleLR schedule(optimizer, {.max_lr = {5e-3}, .total_steps = std::max(steps, 1)});
  auto [val_x, val_y] = windows(corpus.ids, split, n, 48, gen, /*random=*/false);
  nn::Progress progress(steps, {.label = "train", .log_every = log_every});
  auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < steps; ++step) {
    auto [x, y] = windows(corpus.ids, 0, split, kBatch, gen, /*random=*/true);
    optimizer.zero_grad();
    TensorList hx;
    Tensor logits = model->forward(x, hx);
    Tensor loss = cross_entropy(reshape(logits, {-1, logits.size(2)}), reshape(y, {-1}));
    loss.backward();
    optim::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
    schedule.step();
    char note[64];
    std::snprintf(note, sizeof note, "lr %.2e", optimizer.lr());
    progress.update(step, loss.item<double>(), note);
  }
  progress.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("sample:\n%s\n", sample(*model, corpus, "The GNU General Public License ", gen).c_str());
  double val;
  {
    InferenceModeGuard inference;
    val = loss_of(*model, val_x, val_y);
  }
  const double unigram = unigram_entropy(corpus.ids, split, n);
  std::printf("trained %d steps in %.1fs; unigram entropy of the held-out text %.4f\n", steps, seconds, unigram);
  std::printf("val loss: %.4f\n", val);
  if (steps >= kLearningSteps && !(val < unigram)) {
    std::fprintf(stderr, "FAILED: the model does not beat the unigram entropy\n");
    return 1;
  }
  return 0;
}
