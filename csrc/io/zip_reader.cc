#include "io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/status.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the zip and .npy readers assume a little-endian host"
#endif

namespace mbv2::io {
namespace {

constexpr std::uint32_t kLocalHeaderSig = 0x04034b50;
constexpr std::uint32_t kCentralHeaderSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kZip64EndSig = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kEndSize = 22;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::size_t kZip64EndSize = 56;
constexpr std::size_t kLocalHeaderSize = 30;
constexpr std::size_t kMaxCommentSize = 0xFFFF;
constexpr std::uint16_t kZip64ExtraId = 0x0001;
constexpr std::uint32_t kZip64Marker32 = 0xFFFFFFFF;
constexpr std::uint16_t kZip64Marker16 = 0xFFFF;
constexpr std::uint16_t kFlagEncrypted = 0x0001;
constexpr std::uint16_t kMethodStored = 0;
constexpr std::uint16_t kMethodDeflate = 8;

[[noreturn]] void fail(const std::string& message) {
  throw Error(Status::kInvalidFormat, "truncated or corrupt zip archive: " + message);
}

// [offset, offset + length) of `buffer`, or an error naming `what` when it
// does not lie inside it (the usual sign of a truncated file).
ByteView slice(ByteView buffer, std::uint64_t offset, std::uint64_t length, const std::string& what) {
  if (offset > buffer.size || length > buffer.size - offset) {
    fail(what + " lies outside the file (offset " + std::to_string(offset) + ", length " +
         std::to_string(length) + ", file size " + std::to_string(buffer.size) + "); truncated?");
  }
  return {buffer.data + offset, static_cast<std::size_t>(length)};
}

// Sequential little-endian reads inside one view; reading past its end is an error.
class Cursor {
 public:
  Cursor(ByteView view, std::string what) : view_(view), what_(std::move(what)) {}

  std::uint16_t u16() { return read<std::uint16_t>(); }
  std::uint32_t u32() { return read<std::uint32_t>(); }
  std::uint64_t u64() { return read<std::uint64_t>(); }
  void skip(std::size_t n) { bytes(n); }
  bool at_end() const { return pos_ == view_.size; }

  ByteView bytes(std::size_t n) {
    ByteView out = slice(view_, pos_, n, what_);
    pos_ += n;
    return out;
  }

 private:
  template <typename T>
  T read() {
    T value;
    std::memcpy(&value, bytes(sizeof(T)).data, sizeof(T));
    return value;
  }

  ByteView view_;
  std::string what_;
  std::size_t pos_ = 0;
};

std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

struct Directory {
  std::uint64_t entry_count;
  std::uint64_t size;
  std::uint64_t offset;
};

// The end-of-central-directory record sits in the last 22 bytes plus an
// optional comment of up to 64 KiB, so search backwards that far.
std::size_t find_end_record(ByteView archive) {
  if (archive.size < kEndSize) fail("the file is " + std::to_string(archive.size) + " bytes, too short for a zip");
  std::size_t lowest = archive.size - kEndSize > kMaxCommentSize ? archive.size - kEndSize - kMaxCommentSize : 0;
  for (std::size_t pos = archive.size - kEndSize + 1; pos-- > lowest;) {
    if (load_u32(archive.data + pos) == kEndSig) return pos;
  }
  fail("no end-of-central-directory record (not a zip file, or truncated)");
}

Directory read_zip64_directory(ByteView archive, std::size_t end_pos) {
  if (end_pos < kZip64LocatorSize) fail("zip64 end-of-central-directory locator is missing");
  Cursor locator(slice(archive, end_pos - kZip64LocatorSize, kZip64LocatorSize, "zip64 locator"), "zip64 locator");
  if (locator.u32() != kZip64LocatorSig) fail("zip64 end-of-central-directory locator is missing");
  locator.skip(4);
  std::uint64_t record_offset = locator.u64();
  Cursor record(slice(archive, record_offset, kZip64EndSize, "zip64 end record"), "zip64 end record");
  if (record.u32() != kZip64EndSig) fail("zip64 end-of-central-directory record is corrupt");
  record.skip(8 + 2 + 2);  // record size, versions made by / needed
  std::uint32_t disk = record.u32();
  std::uint32_t directory_disk = record.u32();
  std::uint64_t entries_on_disk = record.u64();
  Directory dir{record.u64(), record.u64(), record.u64()};
  if (disk != 0 || directory_disk != 0 || entries_on_disk != dir.entry_count) {
    fail("multi-disk archives are not supported");
  }
  return dir;
}

Directory read_directory_location(ByteView archive) {
  std::size_t end_pos = find_end_record(archive);
  Cursor end(slice(archive, end_pos, kEndSize, "end record"), "end record");
  end.skip(4);
  std::uint16_t disk = end.u16();
  std::uint16_t directory_disk = end.u16();
  std::uint16_t entries_on_disk = end.u16();
  std::uint16_t entry_count = end.u16();
  std::uint32_t size = end.u32();
  std::uint32_t offset = end.u32();
  if (entry_count == kZip64Marker16 || size == kZip64Marker32 || offset == kZip64Marker32) {
    return read_zip64_directory(archive, end_pos);
  }
  if (disk != 0 || directory_disk != 0 || entries_on_disk != entry_count) {
    fail("multi-disk archives are not supported");
  }
  return {entry_count, size, offset};
}

// Replaces the 32-bit fields that hold the zip64 marker with the 64-bit values
// of the zip64 extra field, which stores only those, in this order.
void apply_zip64_extra(ByteView extra, ZipEntry& entry) {
  Cursor fields(extra, "extra field of '" + entry.name + "'");
  while (!fields.at_end()) {
    std::uint16_t id = fields.u16();
    ByteView data = fields.bytes(fields.u16());
    if (id != kZip64ExtraId) continue;
    Cursor zip64(data, "zip64 extra field of '" + entry.name + "'");
    if (entry.uncompressed_size == kZip64Marker32) entry.uncompressed_size = zip64.u64();
    if (entry.compressed_size == kZip64Marker32) entry.compressed_size = zip64.u64();
    if (entry.local_header_offset == kZip64Marker32) entry.local_header_offset = zip64.u64();
    return;
  }
}

void check_entry(const ZipEntry& entry, std::uint16_t flags) {
  const std::string member = "member '" + entry.name + "'";
  if (flags & kFlagEncrypted) fail(member + " is encrypted");
  if (entry.method != kMethodStored && entry.method != kMethodDeflate) {
    fail(member + " uses compression method " + std::to_string(entry.method) +
         "; only stored (0) and deflate (8) are supported");
  }
  if (entry.uncompressed_size > kMaxZipMemberSize) {
    fail(member + " is " + std::to_string(entry.uncompressed_size) + " bytes, more than the limit of " +
         std::to_string(kMaxZipMemberSize));
  }
  if (entry.method == kMethodStored && entry.compressed_size != entry.uncompressed_size) {
    fail(member + " is stored but its compressed and uncompressed sizes differ");
  }
}

ZipEntry read_central_header(Cursor& directory) {
  if (directory.u32() != kCentralHeaderSig) fail("central directory entry signature is wrong");
  directory.skip(4);  // versions made by / needed
  std::uint16_t flags = directory.u16();
  ZipEntry entry;
  entry.method = directory.u16();
  directory.skip(4);  // modification time and date
  entry.crc32 = directory.u32();
  entry.compressed_size = directory.u32();
  entry.uncompressed_size = directory.u32();
  std::uint16_t name_size = directory.u16();
  std::uint16_t extra_size = directory.u16();
  std::uint16_t comment_size = directory.u16();
  directory.skip(2 + 2 + 4);  // start disk, internal and external attributes
  entry.local_header_offset = directory.u32();
  ByteView name = directory.bytes(name_size);
  entry.name.assign(reinterpret_cast<const char*>(name.data), name.size);
  apply_zip64_extra(directory.bytes(extra_size), entry);
  directory.skip(comment_size);
  check_entry(entry, flags);
  return entry;
}

// The member's compressed bytes, found through its local header, whose name
// must agree with the central directory's.
ByteView member_data(ByteView archive, const ZipEntry& entry) {
  const std::string what = "local header of '" + entry.name + "'";
  Cursor local(slice(archive, entry.local_header_offset, kLocalHeaderSize, what), what);
  if (local.u32() != kLocalHeaderSig) fail(what + " has a wrong signature");
  local.skip(22);  // version, flags, method, time, date, crc, sizes: the central directory is authoritative
  std::uint16_t name_size = local.u16();
  std::uint16_t extra_size = local.u16();
  std::uint64_t name_offset = entry.local_header_offset + kLocalHeaderSize;
  ByteView name = slice(archive, name_offset, name_size, what);
  if (std::string(reinterpret_cast<const char*>(name.data), name.size) != entry.name) {
    fail(what + " names a different member");
  }
  return slice(archive, name_offset + name_size + extra_size, entry.compressed_size, "data of '" + entry.name + "'");
}

// zlib counts in uInt; members can be larger, so feed it in chunks.
uInt zlib_chunk(std::size_t n) { return static_cast<uInt>(std::min<std::size_t>(n, UINT_MAX)); }

void inflate_raw(ByteView in, std::uint8_t* out, std::size_t out_size, const std::string& name) {
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) throw Error(Status::kOutOfMemory, "zlib could not start inflating");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&stream, inflateEnd);
  const std::uint8_t* in_end = in.data + in.size;
  std::uint8_t* out_end = out + out_size;
  stream.next_in = const_cast<Bytef*>(in.data);
  stream.next_out = out;
  int result = Z_OK;
  while (result == Z_OK) {
    stream.avail_in = zlib_chunk(in_end - stream.next_in);
    stream.avail_out = zlib_chunk(out_end - stream.next_out);
    result = inflate(&stream, Z_NO_FLUSH);
  }
  const std::string member = "member '" + name + "'";
  if (result == Z_MEM_ERROR) throw Error(Status::kOutOfMemory, "out of memory inflating " + member);
  if (result == Z_DATA_ERROR) fail(member + " has corrupt deflate data (" + (stream.msg ? stream.msg : "") + ")");
  if (result == Z_BUF_ERROR && stream.next_out == out_end) fail(member + " inflates to more than its declared size");
  if (result != Z_STREAM_END) fail(member + " has truncated deflate data");
  if (stream.next_out != out_end) fail(member + " inflates to fewer bytes than its declared size");
}

}  // namespace

ZipReader::ZipReader(ByteView archive) : archive_(archive) {
  Directory dir = read_directory_location(archive_);
  if (dir.entry_count > kMaxZipEntries) {
    fail("it has " + std::to_string(dir.entry_count) + " members, more than the limit of " +
         std::to_string(kMaxZipEntries));
  }
  Cursor directory(slice(archive_, dir.offset, dir.size, "central directory"), "central directory");
  entries_.reserve(dir.entry_count);
  for (std::uint64_t i = 0; i < dir.entry_count; ++i) {
    ZipEntry entry = read_central_header(directory);
    if (find(entry.name) != nullptr) fail("member '" + entry.name + "' appears twice");
    entries_.push_back(std::move(entry));
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const ZipEntry& e) { return e.name == name; });
  return it == entries_.end() ? nullptr : &*it;
}

ByteView ZipReader::extract(const ZipEntry& entry, std::vector<std::uint8_t>& scratch) const {
  ByteView data = member_data(archive_, entry);
  if (entry.method == kMethodDeflate) {
    scratch.resize(entry.uncompressed_size);
    inflate_raw(data, scratch.data(), scratch.size(), entry.name);
    data = {scratch.data(), scratch.size()};
  }
  if (crc32_z(0, data.data, data.size) != entry.crc32) {
    fail("member '" + entry.name + "' fails its CRC-32 check (corrupt data)");
  }
  return data;
}

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(Status::kFileNotFound, "weight file '" + path + "' does not exist");
  if (!fs::is_regular_file(status)) {
    throw Error(Status::kInvalidFormat, path + " is not a file; expected an mbv2-engine weight file (.npz)");
  }
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw Error(Status::kIoError, "cannot open weight file '" + path + "'");
  std::streamoff size = file.tellg();
  if (size < 0) throw Error(Status::kIoError, "cannot read weight file '" + path + "'");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  file.seekg(0);
  if (!file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    throw Error(Status::kIoError, "cannot read weight file '" + path + "'");
  }
  return bytes;
}

}  // namespace mbv2::io
