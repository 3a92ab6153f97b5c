// The head: its 1x1 conv, ReLU6 and global average pool in one pass.
#pragma once

#include <cstddef>

#include "core/kernel_set.h"
#include "core/packing.h"

namespace mbv2 {

// The head 1x1 conv + ReLU6 + global average pool over the last block's
// output (pixels x head.k, stored: 7x7x320 at 224x224), for head channels
// [n0, n1) only, so a team splits the head's 1.6 MB of weights by output
// channel. The pixels go through the kernel in blocks of a fixed size, each
// head channel's sum in the same order whoever computes it: the 7x7x1280 head
// output exists only in registers, and every split gives the same bits.
// n0 and n1 are multiples of head.nr (or n1 = head.n).
void head_pool(const KernelSet& ks, const PackedConv& head, const float* in, size_t pixels, size_t n0, size_t n1,
               float* pooled);

}  // namespace mbv2
