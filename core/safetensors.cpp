// Safetensors checkpoint files: writer (atomic) and verifying reader; the
// layout and the checksum are described in safetensors.h.
#include "core/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <tuple>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "core/crc32.h"
#include "core/json_util.h"

namespace deja::core {

static_assert(std::endian::native == std::endian::little, "checkpoints store little-endian floats as is");

namespace {

const char* kFormatKey = "deja_format";
const char* kChecksumKey = "deja_checksum";
const char* kFormatVersion = "1";

// The checksum covers the header without its checksum entry, in nlohmann's
// canonical dump (sorted keys, compact), then the data bytes.
uint32_t checksum(Json header_without_checksum, const char* data, uint64_t size) {
  const std::string canonical = header_without_checksum.dump();
  uint32_t crc = crc32(canonical.data(), canonical.size());
  return crc32(data, size, crc);
}

std::string errno_text() { return std::strerror(errno); }

// Writes all bytes or throws.
void write_all(int fd, const char* data, uint64_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("cannot write checkpoint '" + path + "': " + errno_text());
    }
    data += n;
    size -= static_cast<uint64_t>(n);
  }
}

class Fd {  // closes on scope exit
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }

 private:
  int fd_;
};

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      throw std::invalid_argument("write_safetensors '" + path + "': bad tensor name '" + t.name + "'");
    if (!seen.insert(t.name).second)
      throw std::invalid_argument("write_safetensors '" + path + "': duplicate tensor name '" + t.name + "'");
    const int64_t numel = shape_numel(t.shape);
    if (numel > 0 && t.data == nullptr)
      throw std::invalid_argument("write_safetensors '" + path + "': tensor '" + t.name + "' has no data");
    const uint64_t bytes = static_cast<uint64_t>(numel) * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  Json meta = Json::object();
  for (const auto& [key, value] : metadata) {
    if (key == kFormatKey || key == kChecksumKey)
      throw std::invalid_argument("write_safetensors '" + path + "': metadata key '" + key + "' is reserved");
    meta[key] = value;
  }
  meta[kFormatKey] = kFormatVersion;
  header["__metadata__"] = meta;

  // Checksum: header without the checksum entry, then every tensor's bytes in order.
  uint32_t crc = 0;
  {
    const std::string canonical = header.dump();
    crc = crc32(canonical.data(), canonical.size());
    for (const auto& t : tensors)
      crc = crc32(t.data, static_cast<size_t>(shape_numel(t.shape)) * sizeof(float), crc);
  }
  header["__metadata__"][kChecksumKey] = fmt::format("{:08x}", crc);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw std::runtime_error("cannot write checkpoint '" + path + "': " + errno_text());
    try {
      char len_bytes[8];
      std::memcpy(len_bytes, &header_len, 8);
      write_all(fd.get(), len_bytes, 8, path);
      write_all(fd.get(), text.data(), text.size(), path);
      for (const auto& t : tensors)
        write_all(fd.get(), reinterpret_cast<const char*>(t.data),
                  static_cast<uint64_t>(shape_numel(t.shape)) * sizeof(float), path);
      if (::fsync(fd.get()) != 0)
        throw std::runtime_error("cannot write checkpoint '" + path + "': fsync: " + errno_text());
      if (::close(fd.release()) != 0)
        throw std::runtime_error("cannot write checkpoint '" + path + "': close: " + errno_text());
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write checkpoint '" + path + "': rename: " + why);
  }
  // Make the rename itself durable.
  Fd dir(::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0)
    throw std::runtime_error("cannot write checkpoint '" + path + "': fsync of its folder: " + errno_text());
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  const std::string who = "checkpoint '" + path + "': ";
  auto fail = [&](const std::string& what) { return std::runtime_error(who + what); };

  SafetensorsFile f;
  f.path_ = path;
  {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw fail("cannot open: " + errno_text());
    const auto size = static_cast<std::streamoff>(in.tellg());
    f.bytes_.resize(static_cast<size_t>(size));
    in.seekg(0);
    if (size > 0 && !in.read(f.bytes_.data(), size)) throw fail("cannot read: " + errno_text());
  }
  const uint64_t file_size = f.bytes_.size();
  if (file_size < 8) throw fail(fmt::format("file is {} bytes, too short for a header", file_size));
  const uint64_t header_len = read_u64_le(f.bytes_.data());
  if (header_len > file_size - 8)
    throw fail(fmt::format("header length {} exceeds file size {}", header_len, file_size));
  f.data_start_ = 8 + header_len;

  Json header;
  try {
    header = Json::parse(f.bytes_.begin() + 8, f.bytes_.begin() + static_cast<std::ptrdiff_t>(f.data_start_));
  } catch (const Json::parse_error& e) {
    // e.byte is 1-based within the header text; report the offset in the file.
    throw fail(fmt::format("malformed header JSON at byte {}", 8 + (e.byte > 0 ? e.byte - 1 : 0)));
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  // Metadata: strings only, with our format and checksum.
  Json meta = header.contains("__metadata__") ? header.at("__metadata__") : Json::object();
  if (!meta.is_object()) throw fail("__metadata__ is not an object");
  for (const auto& item : meta.items())
    if (!item.value().is_string()) throw fail("metadata '" + item.key() + "' is not a string");
  if (!meta.contains(kChecksumKey) || !meta.contains(kFormatKey))
    throw fail("not a deja checkpoint (no deja_format/deja_checksum metadata)");
  if (meta.at(kFormatKey) != kFormatVersion)
    throw fail("unsupported deja_format '" + meta.at(kFormatKey).get<std::string>() + "'");

  // Tensor table: each entry well formed, sizes match shapes, data contiguous from 0.
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const auto& item : header.items()) {
    const std::string& name = item.key();
    if (name == "__metadata__") continue;
    const Json& e = item.value();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets") ||
        e.size() != 3)
      throw fail("tensor '" + name + "' entry must have exactly dtype, shape and data_offsets, got " + e.dump());
    if (!e.at("dtype").is_string()) throw fail("tensor '" + name + "' has a non-string dtype " + e.at("dtype").dump());
    if (e.at("dtype") != "F32")
      throw fail("tensor '" + name + "' has unsupported dtype '" + e.at("dtype").get<std::string>() + "'");
    Entry entry;
    const Json& shape = e.at("shape");
    if (!shape.is_array()) throw fail("tensor '" + name + "' has a malformed shape " + shape.dump());
    for (const Json& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40))
        throw fail("tensor '" + name + "' has a malformed shape " + shape.dump());
      entry.shape.push_back(d.get<int64_t>());
    }
    const Json& off = e.at("data_offsets");
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned() ||
        off[0].get<uint64_t>() > off[1].get<uint64_t>())
      throw fail("tensor '" + name + "' has malformed data_offsets " + off.dump());
    entry.begin = off[0].get<uint64_t>();
    entry.end = off[1].get<uint64_t>();
    if (entry.end - entry.begin != static_cast<uint64_t>(shape_numel(entry.shape)) * sizeof(float))
      throw fail(fmt::format("tensor '{}' data_offsets [{}, {}] do not match shape {} (F32)", name, entry.begin,
                             entry.end, shape_to_string(entry.shape)));
    order.emplace_back(entry.begin, name);
    f.entries_.emplace(name, std::move(entry));
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    // Zero-sized tensors share an offset with their neighbour: order by (begin, end).
    const Entry& ea = f.entries_.at(a.second);
    const Entry& eb = f.entries_.at(b.second);
    return std::tie(ea.begin, ea.end, a.second) < std::tie(eb.begin, eb.end, b.second);
  });
  uint64_t expected = 0;
  for (const auto& [begin, name] : order) {
    const Entry& e = f.entries_.at(name);
    if (begin != expected)
      throw fail(fmt::format("tensor '{}' data_offsets [{}, {}] leave a gap or overlap (expected to begin at {})",
                             name, e.begin, e.end, expected));
    expected = e.end;
  }
  const uint64_t data_end = f.data_start_ + expected;
  if (data_end != file_size)
    throw fail(fmt::format("data ends at byte {} but file has {} bytes", data_end, file_size));

  Json without = header;
  without["__metadata__"].erase(kChecksumKey);
  const uint32_t crc = checksum(without, f.bytes_.data() + f.data_start_, expected);
  if (meta.at(kChecksumKey).get<std::string>() != fmt::format("{:08x}", crc))
    throw fail("checksum mismatch (file damaged)");

  for (const auto& item : meta.items())
    if (item.key() != kFormatKey && item.key() != kChecksumKey) f.metadata_[item.key()] = item.value();
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> order;
  for (const auto& [name, e] : entries_) order.push_back({{e.begin, e.end}, name});
  std::sort(order.begin(), order.end());
  std::vector<std::string> out;
  for (auto& item : order) out.push_back(std::move(item.second));
  return out;
}

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw std::runtime_error("checkpoint '" + path_ + "': no tensor '" + name + "'");
  return it->second;
}

const Shape& SafetensorsFile::shape(const std::string& name) const { return entry(name).shape; }

void SafetensorsFile::copy_to(const std::string& name, const Shape& expected, float* dst) const {
  const Entry& e = entry(name);
  if (e.shape != expected)
    throw std::runtime_error("checkpoint '" + path_ + "': tensor '" + name + "' has shape " +
                             shape_to_string(e.shape) + ", expected " + shape_to_string(expected));
  if (e.end > e.begin) std::memcpy(dst, bytes_.data() + data_start_ + e.begin, e.end - e.begin);
}

}  // namespace deja::core
