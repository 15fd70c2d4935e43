// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/envelope.h"

namespace fieldhub::pipeline {

// The spool's on-disk record, sans I/O. One record is one Envelope's durable content (readings,
// events, dead letters, replay digest, flags; never its AckToken):
//   [magic u32][payload length u32][crc32c u32 of seq and payload][seq u64][payload]
// all little-endian. A record is accepted only whole: a torn or damaged one is told apart from
// "need more bytes" so the spool can truncate a torn tail and resynchronise past damage.
namespace spool_codec {

constexpr std::uint32_t magic = 0x4C4F5053;  // "SPOL" read as little-endian bytes
constexpr std::size_t header_bytes = 20;
constexpr std::uint32_t max_payload_bytes = 64u << 20;  // a record longer than this is damage

// CRC-32C (Castagnoli), as used by iSCSI, ext4 and LevelDB's log records.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0);

// True when the envelope has anything to keep (an acknowledgement alone is not written).
bool has_content(const Envelope& env);

// Appends the whole record for `env` numbered `seq` to `out`.
void append_record(std::uint64_t seq, const Envelope& env, std::string& out);

enum class Parse { ok, incomplete, corrupt };

struct RecordView {
  Parse status = Parse::incomplete;
  std::uint64_t seq = 0;
  std::string_view payload;  // valid while the input is
  std::size_t size = 0;      // bytes of the whole record when ok
};

// Looks at the record that starts at bytes[0]. incomplete: too few bytes for the header or the
// length it announces (a torn tail, or read more); corrupt: wrong magic, impossible length or a
// checksum mismatch.
RecordView parse_record(std::string_view bytes);

// The whole size the record at bytes[0] announces (header + payload length); header_bytes when
// fewer bytes than a header are given.
std::size_t announced_size(std::string_view bytes);

// The first offset > 0 at which a whole valid record starts, or npos.
std::size_t resync(std::string_view bytes);

void encode_payload(const Envelope& env, std::string& out);
// nullopt when the payload is not one this codec wrote (checked bounds, enums, exact length).
std::optional<Envelope> decode_payload(std::string_view payload);

}  // namespace spool_codec
}  // namespace fieldhub::pipeline
