#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "data/text_corpus.h"
#include "data_test_files.h"

using namespace deja::data;
using deja::testing::TempDir;

namespace {

std::string write_text(const TempDir& dir, const std::string& text) {
  const std::string path = dir.file("corpus.txt");
  deja::testing::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
  return path;
}

}  // namespace

TEST_CASE("word corpus: line split, vocabulary from train by count, <unk> and <eos>") {
  TempDir dir;
  // 10 lines: 8 train, 1 valid, 1 test.
  const std::string path = write_text(dir,
                                      "the cat sat\nthe dog sat\nthe cat ran\na b\nthe <unk>\nc\nthe\nthe cat\n"
                                      "the zebra\ndog cat\n");
  TextCorpusOptions o;
  o.valid_fraction = 0.1;
  o.test_fraction = 0.1;
  TextCorpus corpus(path, o);
  // Counts in train: the 6, cat 3, sat 2, a 1, b 1, c 1, dog 1, ran 1.
  CHECK(corpus.vocabulary() ==
        std::vector<std::string>{"<unk>", "<eos>", "the", "cat", "sat", "a", "b", "c", "dog", "ran"});
  CHECK(corpus.unk_id() == 0);
  CHECK(corpus.train().size() == 8 + 17);  // 17 words, one <eos> per line
  CHECK(std::vector<int32_t>(corpus.train().begin(), corpus.train().begin() + 4) == std::vector<int32_t>{2, 3, 4, 1});
  CHECK(corpus.valid() == std::vector<int32_t>{2, 0, 1});  // "the zebra": zebra unseen in train
  CHECK(corpus.test() == std::vector<int32_t>{8, 3, 1});
  CHECK(corpus.unknown_in_train() == 1);  // the literal <unk>
  CHECK(corpus.describe() == "text corpus '" + path + "' (word level): vocabulary 10, train 25 / valid 3 / test 3 tokens");

  TextCorpusOptions rare = o;
  rare.min_count = 2;
  TextCorpus r(path, rare);
  CHECK(r.vocabulary() == std::vector<std::string>{"<unk>", "<eos>", "the", "cat", "sat"});
  TextCorpusOptions capped = o;
  capped.max_vocab = 4;
  CHECK(TextCorpus(path, capped).vocabulary() == std::vector<std::string>{"<unk>", "<eos>", "the", "cat"});
}

TEST_CASE("char corpus keeps newlines as tokens") {
  TempDir dir;
  const std::string path = write_text(dir, "abba\nab\n");
  TextCorpusOptions o;
  o.level = "char";
  o.valid_fraction = 0;
  o.test_fraction = 0;
  TextCorpus corpus(path, o);
  CHECK(corpus.vocabulary() == std::vector<std::string>{"<unk>", "a", "b", "\n"});
  CHECK(corpus.train() == std::vector<int32_t>{1, 2, 2, 1, 3, 1, 2, 3});
  CHECK(corpus.valid().empty());
}

TEST_CASE("corpus errors") {
  CHECK_THROWS_WITH(TextCorpus("/nonexistent/c.txt", {}), "data: '/nonexistent/c.txt': cannot open (missing or unreadable)");
  TextCorpusOptions bad;
  bad.level = "byte";
  CHECK_THROWS_WITH(TextCorpus("/x", bad), "TextCorpus: level must be \"word\" or \"char\", got \"byte\"");
}

TEST_CASE("BpttBatcher: contiguous streams, next-token targets, short last window") {
  std::vector<int32_t> tokens(23);
  for (int i = 0; i < 23; ++i) tokens[i] = i;
  BpttBatcher b(tokens, 2, 4);  // streams of 11: [0..10], [11..21]; 22 dropped
  CHECK(b.stream_length() == 11);
  CHECK(b.windows() == 3);      // inputs at 0-3, 4-7, 8-9
  deja::core::Tensor in;
  std::vector<int32_t> targets;
  CHECK(b.get(0, in, targets) == 4);
  CHECK(in.shape() == deja::core::Shape{2, 4});
  CHECK(in.to_vector() == std::vector<float>{0, 1, 2, 3, 11, 12, 13, 14});
  CHECK(targets == std::vector<int32_t>{1, 2, 3, 4, 12, 13, 14, 15});
  CHECK(b.get(2, in, targets) == 2);
  CHECK(in.to_vector() == std::vector<float>{8, 9, 19, 20});
  CHECK(targets == std::vector<int32_t>{9, 10, 20, 21});
  CHECK_THROWS_WITH(BpttBatcher(std::vector<int32_t>(5), 4, 2), "BpttBatcher: 5 tokens cannot fill 4 streams of at least 2 tokens");
}
