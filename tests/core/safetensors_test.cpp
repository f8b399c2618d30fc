#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/crc32.h"
#include "core/json_util.h"
#include "core/safetensors.h"

using namespace deja::core;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("deja_safetensors_test_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
uint64_t header_length(const std::vector<char>& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return n;
}
// A file with the given raw header text (no checksum unless the text has one) and data.
void write_raw(const std::string& path, std::string header, const std::vector<char>& data) {
  std::vector<char> bytes(8);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  write_bytes(path, bytes);
}

const std::vector<float> kW = {1, 2, 3, 4, 5, 6};
const std::vector<float> kB = {-0.5f, 0.25f};
const std::vector<float> kM = {1e-8f, -3e30f, 7, 8, 9, 10};

std::string write_sample(const TempDir& t) {
  const std::string path = t.file("sample.safetensors");
  write_safetensors(path, {{"conv1.weight", {2, 3}, kW.data()}, {"conv1.bias", {2}, kB.data()},
                           {"adam.m", {6}, kM.data()}, {"empty", {0, 4}, nullptr}},
                    {{"epoch", "3"}, {"config", "{\"a\": 1}"}});
  return path;
}

}  // namespace

TEST_CASE("crc32 matches the standard check value and chains") {
  const char* s = "123456789";
  CHECK(crc32(s, 9) == 0xCBF43926u);
  CHECK(crc32(s + 4, 5, crc32(s, 4)) == 0xCBF43926u);
  CHECK(crc32(s, 0) == 0u);
}

TEST_CASE("safetensors round trip keeps names, shapes, values and metadata") {
  TempDir t;
  const std::string path = write_sample(t);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  const SafetensorsFile f = SafetensorsFile::read(path);
  CHECK(f.path() == path);
  CHECK(f.names() == std::vector<std::string>{"conv1.weight", "conv1.bias", "adam.m", "empty"});
  CHECK(f.has("conv1.bias"));
  CHECK_FALSE(f.has("conv2.bias"));
  CHECK(f.shape("conv1.weight") == Shape{2, 3});
  CHECK(f.shape("empty") == Shape{0, 4});
  CHECK(f.metadata() == std::map<std::string, std::string>{{"epoch", "3"}, {"config", "{\"a\": 1}"}});
  std::vector<float> w(6), b(2), m(6);
  f.copy_to("conv1.weight", {2, 3}, w.data());
  f.copy_to("conv1.bias", {2}, b.data());
  f.copy_to("adam.m", {6}, m.data());
  f.copy_to("empty", {0, 4}, nullptr);
  CHECK(w == kW);
  CHECK(b == kB);
  CHECK(m == kM);
  CHECK_THROWS_WITH(f.copy_to("conv1.weight", {3, 2}, w.data()),
                    ("checkpoint '" + path + "': tensor 'conv1.weight' has shape [2, 3], expected [3, 2]").c_str());
  CHECK_THROWS_WITH(f.shape("fc.weight"), ("checkpoint '" + path + "': no tensor 'fc.weight'").c_str());

  // Overwriting an existing file is atomic and leaves no temp file behind.
  write_safetensors(path, {{"x", {1}, kB.data()}}, {});
  CHECK(SafetensorsFile::read(path).names() == std::vector<std::string>{"x"});
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("the file follows the safetensors layout, parsed by hand") {
  TempDir t;
  const auto bytes = read_bytes(write_sample(t));
  const uint64_t n = header_length(bytes);
  CHECK(n % 8 == 0);  // data 8-byte aligned
  const Json header = Json::parse(std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n)));
  CHECK(header["__metadata__"]["deja_format"] == "1");
  CHECK(header["__metadata__"]["deja_checksum"].get<std::string>().size() == 8);
  CHECK(header["__metadata__"]["epoch"] == "3");
  // Offsets contiguous from 0 in writer order, data little-endian float32.
  uint64_t expected = 0;
  for (const char* name : {"conv1.weight", "conv1.bias", "adam.m"}) {
    CAPTURE(name);
    const Json& e = header[name];
    CHECK(e["dtype"] == "F32");
    CHECK(e["data_offsets"][0].get<uint64_t>() == expected);
    expected = e["data_offsets"][1].get<uint64_t>();
  }
  CHECK(header["empty"]["data_offsets"] == Json::array({expected, expected}));
  CHECK(header["conv1.weight"]["shape"] == Json::array({2, 3}));
  CHECK(8 + n + expected == bytes.size());
  float third = 0;
  std::memcpy(&third, bytes.data() + 8 + n + 2 * sizeof(float), sizeof(float));
  CHECK(third == 3.0f);
}

TEST_CASE("truncated and damaged checkpoints are refused with their exact messages") {
  TempDir t;
  const std::string good = write_sample(t);
  const auto bytes = read_bytes(good);
  const uint64_t n = header_length(bytes);
  const std::string path = t.file("bad.safetensors");
  const std::string who = "checkpoint '" + path + "': ";
  auto refused = [&](const std::vector<char>& content) -> std::string {
    write_bytes(path, content);
    try {
      SafetensorsFile::read(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "accepted";
  };
  auto truncated = [&](size_t size) { return std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(size)); };

  CHECK(refused(truncated(0)) == who + "file is 0 bytes, too short for a header");
  CHECK(refused(truncated(5)) == who + "file is 5 bytes, too short for a header");
  const size_t mid_header = 8 + n / 2;
  CHECK(refused(truncated(mid_header)) ==
        who + "header length " + std::to_string(n) + " exceeds file size " + std::to_string(mid_header));
  const size_t mid_data = bytes.size() - 10;
  CHECK(refused(truncated(mid_data)) == who + "data ends at byte " + std::to_string(bytes.size()) +
                                            " but file has " + std::to_string(mid_data) + " bytes");
  auto longer = bytes;
  longer.push_back(0);
  CHECK(refused(longer) == who + "data ends at byte " + std::to_string(bytes.size()) + " but file has " +
                               std::to_string(bytes.size() + 1) + " bytes");

  // A flipped byte: in the length, in the header's structure, in a name, in a shape, in the data, in padding.
  const std::string text(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  auto flipped = [&](size_t at) {
    auto b = bytes;
    b[at] = static_cast<char>(b[at] ^ 0x01);
    return b;
  };
  CHECK(refused(flipped(2)) == who + "header length " + std::to_string(n + 65536) + " exceeds file size " +
                                  std::to_string(bytes.size()));
  CHECK(refused(flipped(1)).find("malformed header JSON at byte") != std::string::npos);  // length shrinks by 256
  CHECK(refused(flipped(0)) != "accepted");                                                // length grows by 1
  CHECK(refused(flipped(8)) == who + "malformed header JSON at byte 8");  // '{' -> 'z'
  const size_t name_at = 8 + text.find("conv1.weight") + 2;
  CHECK(refused(flipped(name_at)) == who + "checksum mismatch (file damaged)");
  const size_t meta_at = 8 + text.find("\"3\"") + 1;  // epoch "3" -> "2"
  CHECK(refused(flipped(meta_at)) == who + "checksum mismatch (file damaged)");
  const size_t shape_at = 8 + text.find("[2,3]") + 3;  // [2,3] -> [2,2]
  CHECK(refused(flipped(shape_at)) == who + "tensor 'conv1.weight' data_offsets [0, 24] do not match shape [2, 2] (F32)");
  for (size_t at : {8 + n, 8 + n + 23, bytes.size() - 1}) {
    CAPTURE(at);
    CHECK(refused(flipped(at)) == who + "checksum mismatch (file damaged)");
  }
  if (text.back() == ' ') CHECK(refused(flipped(8 + n - 1)).find("malformed header JSON") != std::string::npos);
  CHECK(refused(bytes) == "accepted");
}

TEST_CASE("hand-made headers: wrong dtype, gaps, missing checksum, foreign metadata") {
  TempDir t;
  const std::string path = t.file("raw.safetensors");
  const std::string who = "checkpoint '" + path + "': ";
  auto message = [&](const std::string& header, size_t data_bytes) -> std::string {
    write_raw(path, header, std::vector<char>(data_bytes, 0));
    try {
      SafetensorsFile::read(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "accepted";
  };
  const std::string meta = R"("__metadata__":{"deja_format":"1","deja_checksum":"00000000"})";
  CHECK(message(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)" + meta + "}", 4) ==
        who + "tensor 'w' has unsupported dtype 'F16'");
  CHECK(message(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)" + meta + "}", 16) ==
        who + "tensor 'w' data_offsets [8, 16] leave a gap or overlap (expected to begin at 0)");
  CHECK(message(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)" +
                    meta + "}",
                8) == who + "tensor 'v' data_offsets [4, 8] leave a gap or overlap (expected to begin at 8)");
  CHECK(message(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8) ==
        who + "not a deja checkpoint (no deja_format/deja_checksum metadata)");
  CHECK(message(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)" + meta + "}", 8) ==
        who + "checksum mismatch (file damaged)");
  CHECK(message(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]},)" + meta + "}", 8) ==
        who + "tensor 'w' has a malformed shape [-2]");
  CHECK(message(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]},)" + meta + "}", 8) ==
        who + "tensor 'w' has malformed data_offsets [8,0]");
  CHECK(message(R"([1,2])", 0) == who + "header is not a JSON object");
  CHECK(message(R"({"a": })", 0) == who + "malformed header JSON at byte 14");
  CHECK(message(R"({"__metadata__":{"deja_format":"2","deja_checksum":"0"}})", 0) ==
        who + "unsupported deja_format '2'");
  CHECK_THROWS_WITH(SafetensorsFile::read(t.file("missing.safetensors")),
                    ("checkpoint '" + t.file("missing.safetensors") + "': cannot open: No such file or directory").c_str());
}

TEST_CASE("write errors name the path; bad names are refused") {
  TempDir t;
  const std::string path = t.file("no/such/dir/x.safetensors");
  CHECK_THROWS_WITH_AS(write_safetensors(path, {{"w", {2}, kB.data()}}, {}),
                       ("cannot write checkpoint '" + path + "': No such file or directory").c_str(), std::runtime_error);
  const std::string ok = t.file("x.safetensors");
  CHECK_THROWS_WITH_AS(write_safetensors(ok, {{"w", {2}, kB.data()}, {"w", {2}, kB.data()}}, {}),
                       ("write_safetensors '" + ok + "': duplicate tensor name 'w'").c_str(), std::invalid_argument);
  CHECK_THROWS_WITH_AS(write_safetensors(ok, {{"__metadata__", {2}, kB.data()}}, {}),
                       ("write_safetensors '" + ok + "': bad tensor name '__metadata__'").c_str(), std::invalid_argument);
  CHECK_THROWS_WITH_AS(write_safetensors(ok, {}, {{"deja_checksum", "x"}}),
                       ("write_safetensors '" + ok + "': metadata key 'deja_checksum' is reserved").c_str(),
                       std::invalid_argument);
  CHECK_FALSE(fs::exists(ok));
  write_safetensors(ok, {}, {});  // an empty checkpoint is valid
  CHECK(SafetensorsFile::read(ok).names().empty());
}
