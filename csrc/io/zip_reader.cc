#include "io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>

#include "core/status.h"
#include "io/weight_file.h"

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
constexpr std::size_t kCentralHeaderSize = 46;
constexpr std::size_t kMaxCommentSize = 0xFFFF;
constexpr std::uint16_t kZip64ExtraId = 0x0001;
constexpr std::uint32_t kZip64Marker32 = 0xFFFFFFFF;
constexpr std::uint16_t kZip64Marker16 = 0xFFFF;
constexpr std::uint16_t kFlagEncrypted = 0x0001;
constexpr std::uint16_t kFlagDataDescriptor = 0x0008;  // crc and sizes follow the data, not in the local header
constexpr std::uint16_t kFlagStrongEncryption = 0x0040;
constexpr std::uint16_t kMethodStored = 0;
constexpr std::uint16_t kMethodDeflate = 8;
constexpr std::size_t kInflateChunk = std::size_t{1} << 16;

[[noreturn]] void fail(const std::string& message) {
  throw Error(Status::kInvalidFormat, "truncated or corrupt zip archive: " + message);
}

std::string member(const ZipEntry& entry) { return "member '" + entry.name + "'"; }

// [offset, offset + length) lies inside [0, limit); checked without overflow.
bool fits(std::uint64_t offset, std::uint64_t length, std::uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

// `length` bytes of the source at `offset`, or an error naming `what` when
// they are not all in the file (the usual sign of a truncated file).
std::vector<std::uint8_t> read_range(const ByteSource& source, std::uint64_t offset, std::uint64_t length,
                                     const std::string& what) {
  if (!fits(offset, length, source.size())) {
    fail(what + " lies outside the file (offset " + std::to_string(offset) + ", length " + std::to_string(length) +
         ", file size " + std::to_string(source.size()) + "); truncated?");
  }
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(length));
  source.read(offset, bytes.data(), bytes.size());
  return bytes;
}

// Sequential little-endian reads of a record it holds; reading past its end is an error.
class Cursor {
 public:
  Cursor(std::vector<std::uint8_t> bytes, std::string what) : bytes_(std::move(bytes)), what_(std::move(what)) {}
  Cursor(ByteView view, std::string what) : Cursor({view.data, view.data + view.size}, std::move(what)) {}

  std::uint16_t u16() { return read<std::uint16_t>(); }
  std::uint32_t u32() { return read<std::uint32_t>(); }
  std::uint64_t u64() { return read<std::uint64_t>(); }
  void skip(std::size_t n) { bytes(n); }
  std::size_t left() const { return bytes_.size() - pos_; }

  // A view into the cursor's own bytes, valid while the cursor lives.
  ByteView bytes(std::size_t n) {
    if (n > left()) fail(what_ + " ends early (it is " + std::to_string(bytes_.size()) + " bytes)");
    ByteView out{bytes_.data() + pos_, n};
    pos_ += n;
    return out;
  }

  std::string string(std::size_t n) {
    ByteView b = bytes(n);
    return {reinterpret_cast<const char*>(b.data), b.size};
  }

 private:
  template <typename T>
  T read() {
    T value;
    std::memcpy(&value, bytes(sizeof(T)).data, sizeof(T));
    return value;
  }

  std::vector<std::uint8_t> bytes_;
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
  std::uint64_t end;  // where the directory must end: the zip64 end record or the end record
};

// Whether the file starts with a local file header, as every archive whose
// first member is at offset 0 does.
bool starts_with_member(const ByteSource& source) {
  std::uint8_t start[4] = {};
  if (source.size() >= sizeof(start)) source.read(0, start, sizeof(start));
  return load_u32(start) == kLocalHeaderSig;
}

[[noreturn]] void fail_no_end_record(const ByteSource& source) {
  if (!starts_with_member(source)) {
    throw Error(Status::kInvalidFormat,
                "not a zip/npz archive (no end-of-central-directory record, and no zip local file header at its "
                "start); expected an mbv2-engine weight file written by `mbv2-engine export` (docs/format.md)");
  }
  fail("no end-of-central-directory record (truncated?)");
}

// The end record is the last 22 bytes plus a comment of up to 64 KiB: only
// that window is read. The record is the last signature whose comment ends
// exactly at the end of the file (no trailing bytes).
std::uint64_t find_end_record(const ByteSource& source) {
  const std::uint64_t size = source.size();
  if (size < kEndSize) fail_no_end_record(source);
  const std::uint64_t start = size - std::min<std::uint64_t>(size, kEndSize + kMaxCommentSize);
  std::vector<std::uint8_t> window = read_range(source, start, size - start, "end record");
  for (std::size_t pos = window.size() - kEndSize + 1; pos-- > 0;) {
    std::uint16_t comment_size;
    std::memcpy(&comment_size, window.data() + pos + 20, sizeof(comment_size));
    if (load_u32(window.data() + pos) == kEndSig && pos + kEndSize + comment_size == window.size()) {
      return start + pos;
    }
  }
  fail_no_end_record(source);
}

Directory read_zip64_directory(const ByteSource& source, std::uint64_t end_pos) {
  if (end_pos < kZip64LocatorSize) fail("zip64 end-of-central-directory locator is missing");
  const std::uint64_t locator_pos = end_pos - kZip64LocatorSize;
  Cursor locator(read_range(source, locator_pos, kZip64LocatorSize, "zip64 locator"), "zip64 locator");
  if (locator.u32() != kZip64LocatorSig) fail("zip64 end-of-central-directory locator is missing");
  locator.skip(4);
  const std::uint64_t record_pos = locator.u64();
  Cursor record(read_range(source, record_pos, kZip64EndSize, "zip64 end record"), "zip64 end record");
  if (record.u32() != kZip64EndSig) fail("zip64 end-of-central-directory record is corrupt");
  // The record (and any extensible data it declares) must end at the locator.
  const std::uint64_t record_size = record.u64();
  if (record_pos > locator_pos || record_size != locator_pos - record_pos - 12) {
    fail("zip64 end-of-central-directory record does not end where its locator begins");
  }
  record.skip(2 + 2);  // versions made by / needed
  std::uint32_t disk = record.u32();
  std::uint32_t directory_disk = record.u32();
  std::uint64_t entries_on_disk = record.u64();
  Directory dir{record.u64(), record.u64(), record.u64(), record_pos};
  if (disk != 0 || directory_disk != 0 || entries_on_disk != dir.entry_count) {
    fail("multi-disk archives are not supported");
  }
  return dir;
}

Directory read_directory_location(const ByteSource& source) {
  const std::uint64_t end_pos = find_end_record(source);
  Cursor end(read_range(source, end_pos, kEndSize, "end record"), "end record");
  end.skip(4);
  std::uint16_t disk = end.u16();
  std::uint16_t directory_disk = end.u16();
  std::uint16_t entries_on_disk = end.u16();
  std::uint16_t entry_count = end.u16();
  std::uint32_t size = end.u32();
  std::uint32_t offset = end.u32();
  if (entry_count == kZip64Marker16 || size == kZip64Marker32 || offset == kZip64Marker32) {
    return read_zip64_directory(source, end_pos);
  }
  if (disk != 0 || directory_disk != 0 || entries_on_disk != entry_count) {
    fail("multi-disk archives are not supported");
  }
  return {entry_count, size, offset, end_pos};
}

// Limits before the directory is allocated: the entry count, and a size that
// ends exactly where the end records begin (no bytes between, and none before
// the first member, which would shift every offset) and can hold that many entries.
void check_directory(const Directory& dir) {
  if (dir.entry_count > kMaxMembers) {
    fail("it declares " + std::to_string(dir.entry_count) + " members, more than the limit of " +
         std::to_string(kMaxMembers));
  }
  if (dir.size > kMaxDirectoryBytes) {
    fail("its central directory is " + std::to_string(dir.size) + " bytes, more than the limit of " +
         std::to_string(kMaxDirectoryBytes));
  }
  if (dir.size > dir.end || dir.offset != dir.end - dir.size) {
    fail("the central directory (offset " + std::to_string(dir.offset) + ", " + std::to_string(dir.size) +
         " bytes) does not end where the end record begins (" + std::to_string(dir.end) +
         "): bytes before the first member or after the directory?");
  }
  if (dir.size < dir.entry_count * kCentralHeaderSize) {
    fail("a central directory of " + std::to_string(dir.size) + " bytes cannot hold the " +
         std::to_string(dir.entry_count) + " entries the end record declares");
  }
}

// Replaces the fields that hold the zip64 marker with the 64-bit values of the
// zip64 extra field, which stores only those, in this order. `what` names the
// header in messages.
void apply_zip64_extra(ByteView extra, ZipEntry& entry, bool has_offset, const std::string& what) {
  const bool needed = entry.uncompressed_size == kZip64Marker32 || entry.compressed_size == kZip64Marker32 ||
                      (has_offset && entry.local_header_offset == kZip64Marker32);
  Cursor fields(extra, "extra field of " + what);
  while (fields.left() != 0) {
    std::uint16_t id = fields.u16();
    ByteView data = fields.bytes(fields.u16());
    if (id != kZip64ExtraId) continue;
    Cursor zip64(data, "zip64 extra field of " + what);
    if (entry.uncompressed_size == kZip64Marker32) entry.uncompressed_size = zip64.u64();
    if (entry.compressed_size == kZip64Marker32) entry.compressed_size = zip64.u64();
    if (has_offset && entry.local_header_offset == kZip64Marker32) entry.local_header_offset = zip64.u64();
    return;
  }
  if (needed) fail(what + " has a zip64 size marker but no zip64 extra field");
}

std::string printable(const std::string& name) {
  std::string out;
  for (char c : name) out += c == '\0' ? std::string("\\x00") : std::string(1, c);
  return out;
}

// The directory's promises about one member, checked before any of it is read.
void check_entry(const ZipEntry& entry, std::uint64_t directory_offset) {
  if (entry.name.find('\0') != std::string::npos) {
    fail("member name '" + printable(entry.name) + "' contains a NUL byte (readers disagree on where it ends)");
  }
  if (entry.flags & (kFlagEncrypted | kFlagStrongEncryption)) fail(member(entry) + " is encrypted");
  if (entry.method != kMethodStored && entry.method != kMethodDeflate) {
    fail(member(entry) + " uses compression method " + std::to_string(entry.method) +
         "; only stored (0) and deflate (8) are supported");
  }
  if (!fits(entry.local_header_offset, kLocalHeaderSize, directory_offset) ||
      entry.compressed_size > directory_offset - entry.local_header_offset - kLocalHeaderSize) {
    fail(member(entry) + " declares " + std::to_string(entry.compressed_size) + " bytes at offset " +
         std::to_string(entry.local_header_offset) + ", beyond the members' part of the file (" +
         std::to_string(directory_offset) + " bytes)");
  }
  if (entry.method == kMethodStored && entry.compressed_size != entry.uncompressed_size) {
    fail(member(entry) + " is stored but its compressed and uncompressed sizes differ");
  }
  if (entry.method == kMethodDeflate &&
      entry.uncompressed_size > entry.compressed_size * kMaxDeflateRatio + kDeflateSlackBytes) {
    fail(member(entry) + " declares " + std::to_string(entry.uncompressed_size) + " bytes inflated from " +
         std::to_string(entry.compressed_size) + ", more than deflate can produce (" +
         std::to_string(kMaxDeflateRatio) + ":1)");
  }
}

// The fields the central and the local header have in common, in the same
// order: flags, method, time and date, CRC-32, compressed and uncompressed size.
ZipEntry read_shared_fields(Cursor& header) {
  ZipEntry entry;
  entry.flags = header.u16();
  entry.method = header.u16();
  header.skip(4);  // modification time and date
  entry.crc32 = header.u32();
  entry.compressed_size = header.u32();
  entry.uncompressed_size = header.u32();
  return entry;
}

ZipEntry read_central_header(Cursor& directory) {
  if (directory.u32() != kCentralHeaderSig) fail("central directory entry signature is wrong");
  directory.skip(4);  // versions made by / needed
  ZipEntry entry = read_shared_fields(directory);
  std::uint16_t name_size = directory.u16();
  std::uint16_t extra_size = directory.u16();
  std::uint16_t comment_size = directory.u16();
  directory.skip(2 + 2 + 4);  // start disk, internal and external attributes
  entry.local_header_offset = directory.u32();
  entry.name = directory.string(name_size);
  apply_zip64_extra(directory.bytes(extra_size), entry, true, "the directory entry of '" + entry.name + "'");
  directory.skip(comment_size);
  return entry;
}

// zlib counts in uInt; members can be larger, so feed it in pieces.
uInt zlib_chunk(std::size_t n) { return static_cast<uInt>(std::min<std::size_t>(n, UINT_MAX)); }

void end_inflate(z_stream* stream) {
  inflateEnd(stream);
  delete stream;
}

void no_stream(z_stream*) {}

}  // namespace

// ---- byte sources ---------------------------------------------------------------

FileSource::FileSource(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(Status::kFileNotFound, "weight file '" + path + "' does not exist");
  if (!fs::is_regular_file(status)) {
    throw Error(Status::kInvalidFormat, path + " is not a file; expected an mbv2-engine weight file (.npz)");
  }
  file_.open(path, std::ios::binary | std::ios::ate);
  std::streamoff size = file_ ? static_cast<std::streamoff>(file_.tellg()) : -1;
  if (size < 0) throw Error(Status::kIoError, "cannot open weight file '" + path + "'");
  size_ = static_cast<std::uint64_t>(size);
}

void FileSource::read(std::uint64_t offset, std::uint8_t* out, std::size_t n) const {
  file_.seekg(static_cast<std::streamoff>(offset));
  if (!file_.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n))) {
    throw Error(Status::kIoError, "cannot read weight file '" + path_ + "' (" + std::to_string(n) +
                                      " bytes at offset " + std::to_string(offset) + ")");
  }
}

void MemorySource::read(std::uint64_t offset, std::uint8_t* out, std::size_t n) const {
  if (n == 0) return;  // `out` may then be an empty vector's null data(): memcpy must not see it (UBSan)
  std::memcpy(out, bytes_.data + offset, n);
}

// ---- one member -------------------------------------------------------------------

MemberReader::MemberReader(const ByteSource& source, const ZipEntry& entry, std::uint64_t data_offset)
    : source_(&source), entry_(entry), data_offset_(data_offset), stream_(nullptr, no_stream) {
  if (entry.method != kMethodDeflate) return;
  stream_ = {new z_stream{}, end_inflate};  // inflateEnd is harmless after a failed inflateInit2
  if (inflateInit2(stream_.get(), -MAX_WBITS) != Z_OK) {
    throw Error(Status::kOutOfMemory, "zlib could not start inflating " + member(entry));
  }
  input_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kInflateChunk, entry.compressed_size)));
}

MemberReader::MemberReader(MemberReader&&) noexcept = default;
MemberReader::~MemberReader() = default;

void MemberReader::refuse(const std::string& problem) const { fail(member(entry_) + " " + problem); }

void MemberReader::read(std::uint8_t* out, std::size_t n) {
  if (n > remaining()) {
    refuse("ends after its " + std::to_string(entry_.uncompressed_size) + " bytes, inside its .npy header");
  }
  if (entry_.method == kMethodDeflate) {
    inflate_into(out, n);
  } else {
    source_->read(data_offset_ + position_, out, n);
  }
  crc_ = static_cast<std::uint32_t>(crc32_z(crc_, out, n));
  position_ += n;
}

// The next chunk of compressed data, once zlib has used the last.
void MemberReader::refill() {
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(input_.size(), entry_.compressed_size - input_read_));
  source_->read(data_offset_ + input_read_, input_.data(), n);
  input_read_ += n;
  stream_->next_in = input_.data();
  stream_->avail_in = static_cast<uInt>(n);
}

void MemberReader::inflate_into(std::uint8_t* out, std::size_t n) {
  std::uint8_t* const end = out + n;
  stream_->next_out = out;
  while (stream_->next_out != end) {
    if (stream_ended_) refuse("inflates to fewer bytes than its declared size");
    if (stream_->avail_in == 0 && input_read_ < entry_.compressed_size) refill();
    stream_->avail_out = zlib_chunk(static_cast<std::size_t>(end - stream_->next_out));
    int result = inflate(stream_.get(), Z_NO_FLUSH);
    if (result == Z_STREAM_END) {
      stream_ended_ = true;
    } else if (result == Z_MEM_ERROR) {
      throw Error(Status::kOutOfMemory, "out of memory inflating " + member(entry_));
    } else if (result == Z_DATA_ERROR) {
      refuse(std::string("has corrupt deflate data (") + (stream_->msg ? stream_->msg : "") + ")");
    } else if (result != Z_OK) {  // Z_BUF_ERROR: all the compressed data used, output still wanted
      refuse("has truncated deflate data");
    }
  }
}

void MemberReader::finish() {
  if (entry_.method == kMethodDeflate && !stream_ended_) {
    std::uint8_t extra = 0;
    stream_->next_out = &extra;
    stream_->avail_out = 1;
    while (!stream_ended_ && stream_->avail_out == 1) {
      if (stream_->avail_in == 0 && input_read_ < entry_.compressed_size) refill();
      int result = inflate(stream_.get(), Z_NO_FLUSH);
      stream_ended_ = result == Z_STREAM_END;
      if (!stream_ended_ && result != Z_OK) refuse("has corrupt or truncated deflate data");
    }
    if (stream_->avail_out == 0) refuse("inflates to more than its declared size");
  }
  if (entry_.method == kMethodDeflate && (stream_->avail_in != 0 || input_read_ != entry_.compressed_size)) {
    refuse("has bytes after the end of its deflate data");
  }
  if (crc_ != entry_.crc32) refuse("fails its CRC-32 check (corrupt data)");
}

// ---- the archive --------------------------------------------------------------------

ZipReader::ZipReader(const ByteSource& source) : source_(source) {
  Directory dir = read_directory_location(source_);
  // Bytes before the first member shift every offset; some readers undo that, others do not.
  if (!starts_with_member(source_)) fail("it does not start with a local file header: bytes before the first member?");
  check_directory(dir);
  directory_offset_ = dir.offset;
  Cursor directory(read_range(source_, dir.offset, dir.size, "central directory"), "central directory");
  entries_.reserve(static_cast<std::size_t>(dir.entry_count));
  for (std::uint64_t i = 0; i < dir.entry_count; ++i) {
    ZipEntry entry = read_central_header(directory);
    check_entry(entry, directory_offset_);
    if (find(entry.name) != nullptr) fail(member(entry) + " appears twice");
    entries_.push_back(std::move(entry));
  }
  if (directory.left() != 0) {
    fail("the central directory has " + std::to_string(directory.left()) +
         " bytes after the " + std::to_string(dir.entry_count) + " entries the end record declares");
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const ZipEntry& e) { return e.name == name; });
  return it == entries_.end() ? nullptr : &*it;
}

// The local header repeats the name, method and (unless a data descriptor
// follows the data) the CRC and sizes: readers that stream local headers see
// those, so they must say what the directory says.
MemberReader ZipReader::open(const ZipEntry& entry) const {
  const std::string what = "the local header of '" + entry.name + "'";
  Cursor local(read_range(source_, entry.local_header_offset, kLocalHeaderSize, what), what);
  if (local.u32() != kLocalHeaderSig) fail(what + " has a wrong signature");
  local.skip(2);  // version needed
  ZipEntry seen = read_shared_fields(local);
  std::uint16_t name_size = local.u16();
  std::uint16_t extra_size = local.u16();
  std::uint64_t name_offset = entry.local_header_offset + kLocalHeaderSize;
  Cursor fields(read_range(source_, name_offset, std::uint64_t{name_size} + extra_size, what), what);
  seen.name = fields.string(name_size);
  if (seen.name != entry.name) fail(what + " names a different member, '" + printable(seen.name) + "'");
  if (seen.method != entry.method || seen.flags != entry.flags) {
    fail(what + " disagrees with the central directory on the compression method or flags");
  }
  if (!(seen.flags & kFlagDataDescriptor)) {
    apply_zip64_extra(fields.bytes(extra_size), seen, false, what);
    if (seen.crc32 != entry.crc32 || seen.compressed_size != entry.compressed_size ||
        seen.uncompressed_size != entry.uncompressed_size) {
      fail(what + " disagrees with the central directory on the CRC-32 or sizes");
    }
  }
  const std::uint64_t data_offset = name_offset + name_size + extra_size;
  if (!fits(data_offset, entry.compressed_size, directory_offset_)) {
    fail("the data of '" + entry.name + "' runs into the central directory");
  }
  return MemberReader(source_, entry, data_offset);
}

}  // namespace mbv2::io
