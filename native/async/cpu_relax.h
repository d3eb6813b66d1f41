// A spin-wait hint, for loops that wait on another thread for a few microseconds.
#pragma once

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#endif

namespace p11 {

// On x86 PAUSE lets the core's other hardware thread run meanwhile, and leaves the loop without
// the memory-order mis-speculation a plain spin pays when the awaited store arrives.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace p11
