// A read-only zip archive over a caller-owned memory buffer.
//
// Enough of the zip format for numpy's .npz files: the central directory
// (zip64 included: numpy forces zip64 local headers on every member), stored
// and deflate members, CRC-32 checked. Every offset and length read from the
// archive is checked against the buffer, so a truncated or corrupt archive is an
// `mbv2::Error` (kInvalidFormat), never an over-read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mbv2::io {

// A non-owning view of bytes.
struct ByteView {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflate
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t local_header_offset = 0;
};

// Limits that keep a hostile archive from costing much before it is rejected.
// A valid weight file has about 110 members; its largest, the classifier of
// 100000 classes at width 4, is 2 GB.
inline constexpr std::size_t kMaxZipEntries = 4096;
inline constexpr std::uint64_t kMaxZipMemberSize = std::uint64_t{4} << 30;

class ZipReader {
 public:
  // Parses the central directory. `archive` must outlive the reader.
  explicit ZipReader(ByteView archive);

  const std::vector<ZipEntry>& entries() const { return entries_; }

  // The entry with this name, or nullptr.
  const ZipEntry* find(const std::string& name) const;

  // The member's uncompressed bytes, CRC-checked. A stored member is returned
  // in place (a view into the archive); a deflate member is inflated into
  // `scratch`, which the view then points into.
  ByteView extract(const ZipEntry& entry, std::vector<std::uint8_t>& scratch) const;

 private:
  ByteView archive_;
  std::vector<ZipEntry> entries_;
};

// The whole file, read into memory. kFileNotFound / kIoError on failure.
std::vector<std::uint8_t> read_file_bytes(const std::string& path);

}  // namespace mbv2::io
