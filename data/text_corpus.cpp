// Text corpus and BPTT batching.
#include "data/text_corpus.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace deja::data {

namespace {

std::vector<std::string> tokens_of_line(const std::string& line, const TextCorpusOptions& options) {
  std::vector<std::string> tokens;
  if (options.level == "char") {
    for (char c : line) tokens.emplace_back(1, c);
    tokens.emplace_back("\n");
  } else {
    std::istringstream in(line);
    std::string word;
    while (in >> word) tokens.push_back(word);
    if (options.add_eos) tokens.emplace_back("<eos>");
  }
  return tokens;
}

}  // namespace

TextCorpus::TextCorpus(const std::string& path, const TextCorpusOptions& options) : path_(path), options_(options) {
  if (options.level != "word" && options.level != "char")
    throw std::invalid_argument("TextCorpus: level must be \"word\" or \"char\", got \"" + options.level + "\"");
  if (!(options.valid_fraction >= 0 && options.test_fraction >= 0 &&
        options.valid_fraction + options.test_fraction < 1.0))
    throw std::invalid_argument("TextCorpus: valid_fraction and test_fraction must be >= 0 with a sum below 1");
  if (options.min_count < 1) throw std::invalid_argument("TextCorpus: min_count must be >= 1");
  if (options.max_vocab < 0) throw std::invalid_argument("TextCorpus: max_vocab must be >= 0");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("data: '" + path + "': cannot open (missing or unreadable)");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  const int64_t n = static_cast<int64_t>(lines.size());
  auto share = [&](double f) {
    int64_t k = static_cast<int64_t>(std::floor(f * static_cast<double>(n)));
    return (f > 0 && k == 0 && n >= 3) ? int64_t{1} : k;  // a requested split is never empty
  };
  const int64_t n_test = share(options.test_fraction), n_valid = share(options.valid_fraction);
  const int64_t n_train = n - n_valid - n_test;
  if (n_train <= 0) throw std::runtime_error("data: '" + path + "': no text for the training split (" +
                                             std::to_string(n) + " lines)");

  // Vocabulary from the training lines.
  std::unordered_map<std::string, int64_t> counts;
  for (int64_t i = 0; i < n_train; ++i)
    for (auto& t : tokens_of_line(lines[i], options)) ++counts[t];
  if (counts.empty()) throw std::runtime_error("data: '" + path + "': the training split holds no tokens");
  const bool eos = options.level == "word" && options.add_eos;
  std::vector<std::pair<std::string, int64_t>> ranked;
  for (auto& [token, count] : counts)
    if (token != "<unk>" && !(eos && token == "<eos>") && count >= options.min_count)
      ranked.emplace_back(token, count);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  vocabulary_.push_back("<unk>");
  if (eos) vocabulary_.push_back("<eos>");
  for (auto& [token, count] : ranked) {
    if (options.max_vocab > 0 && static_cast<int64_t>(vocabulary_.size()) >= options.max_vocab) break;
    vocabulary_.push_back(token);
  }
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocabulary_.size(); ++i) ids[vocabulary_[i]] = static_cast<int32_t>(i);

  auto encode = [&](int64_t begin, int64_t end, std::vector<int32_t>& out, int64_t* unknown) {
    for (int64_t i = begin; i < end; ++i)
      for (auto& t : tokens_of_line(lines[i], options)) {
        auto it = ids.find(t);
        if (it == ids.end() || it->second == 0) {
          out.push_back(0);
          if (unknown) ++*unknown;
        } else {
          out.push_back(it->second);
        }
      }
  };
  encode(0, n_train, train_, &unknown_train_);
  encode(n_train, n_train + n_valid, valid_, nullptr);
  encode(n_train + n_valid, n, test_, nullptr);
}

std::string TextCorpus::describe() const {
  return "text corpus '" + path_ + "' (" + options_.level + " level): vocabulary " +
         std::to_string(vocabulary_.size()) + ", train " + std::to_string(train_.size()) + " / valid " +
         std::to_string(valid_.size()) + " / test " + std::to_string(test_.size()) + " tokens";
}

BpttBatcher::BpttBatcher(const std::vector<int32_t>& tokens, int64_t batch, int64_t seq_len)
    : tokens_(tokens), batch_(batch), seq_len_(seq_len) {
  if (batch <= 0 || seq_len <= 0)
    throw std::invalid_argument("BpttBatcher: batch and seq_len must be positive, got " + std::to_string(batch) +
                                " and " + std::to_string(seq_len));
  stream_length_ = static_cast<int64_t>(tokens_.size()) / batch;
  if (stream_length_ < 2)
    throw std::invalid_argument("BpttBatcher: " + std::to_string(tokens_.size()) + " tokens cannot fill " +
                                std::to_string(batch) + " streams of at least 2 tokens");
}

int64_t BpttBatcher::windows() const { return (stream_length_ - 1 + seq_len_ - 1) / seq_len_; }

int64_t BpttBatcher::get(int64_t window, core::Tensor& inputs, std::vector<int32_t>& targets) const {
  if (window < 0 || window >= windows())
    throw std::out_of_range("BpttBatcher: window " + std::to_string(window) + " outside [0, " +
                            std::to_string(windows()) + ")");
  const int64_t start = window * seq_len_;
  const int64_t len = std::min(seq_len_, stream_length_ - 1 - start);
  if (!inputs.defined() || inputs.shape() != core::Shape{batch_, len}) inputs = core::Tensor::empty({batch_, len});
  targets.resize(static_cast<size_t>(batch_ * len));
  float* in = inputs.data();
  for (int64_t b = 0; b < batch_; ++b) {
    const int32_t* stream = tokens_.data() + b * stream_length_ + start;
    for (int64_t t = 0; t < len; ++t) {
      in[b * len + t] = static_cast<float>(stream[t]);
      targets[static_cast<size_t>(b * len + t)] = stream[t + 1];
    }
  }
  return len;
}

}  // namespace deja::data
