// A read-only zip archive, read member by member from a file or a memory buffer.
//
// Enough of the zip format for numpy's .npz files: the central directory
// (zip64 included: numpy forces zip64 local headers on every member), stored
// and deflate members, CRC-32 checked. Nothing is read before it is needed:
// the end records and the central directory when the reader is made, a
// member's local header and data when that member is opened. Every offset and
// length the archive declares is checked against the file's size and the
// limits of io/weight_file.h before anything is allocated for it, so a
// truncated, corrupt or hostile archive is an `mbv2::Error` (kInvalidFormat),
// never an over-read or a huge allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

struct z_stream_s;

namespace mbv2::io {

// A non-owning view of bytes.
struct ByteView {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

// Where an archive's bytes come from. Readers check every range against size()
// before they read it.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const = 0;
  // Fills out[0, n) with the bytes at [offset, offset + n), which lie inside size().
  virtual void read(std::uint64_t offset, std::uint8_t* out, std::size_t n) const = 0;
};

// A file on disk, read at offsets. kFileNotFound when it does not exist,
// kInvalidFormat when it is not a regular file, kIoError when it cannot be read.
class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, std::uint8_t* out, std::size_t n) const override;

 private:
  std::string path_;
  mutable std::ifstream file_;  // reads move its position, not the archive
  std::uint64_t size_ = 0;
};

// A caller-owned buffer, which must outlive the source.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(ByteView bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size; }
  void read(std::uint64_t offset, std::uint8_t* out, std::size_t n) const override;

 private:
  ByteView bytes_;
};

struct ZipEntry {
  std::string name;
  std::uint16_t flags = 0;
  std::uint16_t method = 0;  // 0 stored, 8 deflate
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t local_header_offset = 0;
};

// One member's uncompressed bytes, read in order. Stored data is copied from
// the source straight into the caller's buffer; deflate data is inflated from
// the source in fixed-size chunks.
class MemberReader {
 public:
  MemberReader(const ByteSource& source, const ZipEntry& entry, std::uint64_t data_offset);
  MemberReader(MemberReader&&) noexcept;
  ~MemberReader();

  // Bytes of the member not read yet.
  std::uint64_t remaining() const { return entry_.uncompressed_size - position_; }

  // Fills out[0, n); an error when n exceeds remaining().
  void read(std::uint8_t* out, std::size_t n);

  // After the last byte: checks that the deflate data ends exactly there and
  // the CRC-32 of everything read.
  void finish();

 private:
  void inflate_into(std::uint8_t* out, std::size_t n);
  void refill();
  [[noreturn]] void refuse(const std::string& problem) const;

  const ByteSource* source_;
  ZipEntry entry_;
  std::uint64_t data_offset_;
  std::uint64_t position_ = 0;       // uncompressed bytes read
  std::uint64_t input_read_ = 0;     // compressed bytes taken from the source
  std::uint32_t crc_ = 0;
  bool stream_ended_ = false;
  std::vector<std::uint8_t> input_;  // deflate only: the current compressed chunk
  std::unique_ptr<z_stream_s, void (*)(z_stream_s*)> stream_;
};

class ZipReader {
 public:
  // Reads the end records and the central directory. `source` must outlive the reader.
  explicit ZipReader(const ByteSource& source);

  const std::vector<ZipEntry>& entries() const { return entries_; }

  // The entry with this name, or nullptr.
  const ZipEntry* find(const std::string& name) const;

  // Reads the member's local header, which must agree with the directory, and
  // positions a reader at its data.
  MemberReader open(const ZipEntry& entry) const;

 private:
  const ByteSource& source_;
  std::uint64_t directory_offset_ = 0;  // members lie in [0, directory_offset_)
  std::vector<ZipEntry> entries_;
};

}  // namespace mbv2::io
