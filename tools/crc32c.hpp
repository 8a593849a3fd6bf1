// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of TFRecord framing in
// TensorBoard event files (tfevents.hpp).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mmphate::tb {

// CRC-32C of n bytes; crc32c("123456789", 9) == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t n);

// The masked form stored in TFRecords: a CRC of data that itself holds CRCs stays a good check.
std::uint32_t masked_crc32c(const void* data, std::size_t n);

}  // namespace mmphate::tb
