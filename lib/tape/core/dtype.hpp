#pragma once
/// \file Element types: the Dtype enum, the BFloat16 storage type, and the
/// C++ type that stores each dtype (DtypeOf).
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tape {

/// Float32 is the default. Float64 runs every float op (gradient checks use it);
/// BFloat16 is storage (its ops compute in Float32 and round back); Int64 holds
/// indices and counts; Bool holds one byte per element, 0 or 1.
enum class Dtype { Float32, Float64, Int64, Bool, BFloat16 };
const char* dtype_name(Dtype d);
size_t dtype_size(Dtype d);
constexpr bool is_floating(Dtype d) { return d == Dtype::Float32 || d == Dtype::Float64 || d == Dtype::BFloat16; }
/// The dtype a binary op computes in (PyTorch's promotion): Bool < Int64 < the
/// floats, and among floats the wider one (BFloat16 < Float32 < Float64).
Dtype promote_types(Dtype a, Dtype b);

/// bfloat16: the upper 16 bits of a float32 (8-bit exponent, 7-bit mantissa).
/// Converting from float rounds to nearest even; NaN stays NaN.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) {  // NOLINT: implicit, like a float narrowing
    const uint32_t u = std::bit_cast<uint32_t>(f);
    if (std::isnan(f)) bits = uint16_t((u >> 16) | 0x40);  // keep the sign, force a quiet NaN
    else bits = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  operator float() const { return std::bit_cast<float>(uint32_t(bits) << 16); }  // NOLINT
};
static_assert(sizeof(BFloat16) == 2);

template <class T> struct DtypeOf;
template <> struct DtypeOf<float> { static constexpr Dtype value = Dtype::Float32; };
template <> struct DtypeOf<double> { static constexpr Dtype value = Dtype::Float64; };
template <> struct DtypeOf<int64_t> { static constexpr Dtype value = Dtype::Int64; };
static_assert(sizeof(bool) == 1, "Dtype::Bool stores bool as one byte");
template <> struct DtypeOf<bool> { static constexpr Dtype value = Dtype::Bool; };
template <> struct DtypeOf<BFloat16> { static constexpr Dtype value = Dtype::BFloat16; };

}  // namespace tape
