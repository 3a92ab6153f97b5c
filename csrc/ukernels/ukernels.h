// Microkernel function types and declarations.
//
// Microkernels know nothing of tensors or layers: pointers, counts and strides
// (all strides in floats). Weights come packed by core/packing.h into panels of
// `nr` output channels (nr from registry.inc), zero-padded past the last channel:
//   with bias:    [nr biases][k rows of nr weights]   (expand, dwconv, stem, head)
//   without bias: [k rows of nr weights]              (project: the bias comes
//                                                      flat, with its start)
// so a SIMD kernel loads one aligned vector per k and never branches on the tail
// inside its main loop.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// c[i][n] = relu6(bias[n] + sum_k a[i][k] * w[k][n]) for i < m, n < nc.
// The 1x1 expand conv over one row of pixels (m = W, kc = Cin, nc = hidden).
typedef void mbv2_expand_ukernel_fn(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                    const float* w, float* c, size_t c_stride);

// c[i][n] = bias[n] + src[i][n] + sum_k a[i][k] * w[k][n] for i < m, n < nc,
// k < kc, where a null bias or src counts as zeros. src lies c_stride apart like
// c and may be c itself, so chunks of K accumulate one by one. `w` points at row
// k0 of the first panel; panels lie w_panel_stride floats apart, so a slice of
// the hidden channels (the depthwise chunk) is multiplied without repacking.
// The 1x1 projection (m = Wo, kc = chunk, nc = Cout): its first chunk starts
// from bias and the residual (a partial sum from neither), so the output is
// written once instead of being initialised in a pass of its own; the later
// chunks from c. The classifier (m = 1) starts from its bias.
typedef void mbv2_project_ukernel_fn(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                     const float* w, size_t w_panel_stride, const float* bias, const float* src,
                                     float* c, size_t c_stride);

// Depthwise 3x3 + bias + ReLU6 for `out_rows` output rows of `wo` pixels and
// `channels` channels, row r written at out + r * out_row_stride. rows[i]
// points at input row i of the tile, at the pixel under tap (ky = i, kx = 0) of
// output pixel 0, channel 0 of the chunk: (out_rows - 1) * stride + 3 rows, so
// output row r reads rows[r * stride + ky]. Input pixels lie in_pixel_stride
// apart (the full hidden width), so the kernel reads a channel slice of the
// ring buffer. A kernel may compute several output rows at once, each input
// row loaded once for all of them (KernelSet::dwconv_rows).
typedef void mbv2_dwconv3x3s1_ukernel_fn(size_t wo, size_t channels, const float* const* rows,
                                         size_t in_pixel_stride, const float* w, float* out,
                                         size_t out_pixel_stride, size_t out_rows, size_t out_row_stride);
typedef mbv2_dwconv3x3s1_ukernel_fn mbv2_dwconv3x3s2_ukernel_fn;

// One row of an NCHW image into the stem's padded NHWC row: row[0..3) and
// row[(w + 1) * 3 ..) are zeros, pixel i's channel c goes to row[3 + 3i + c]
// from x[c * plane_stride + i]. Returns 1 if any of the 3w values read is NaN
// or infinite, else 0.
typedef int mbv2_load_ukernel_fn(size_t w, const float* x, size_t plane_stride, float* row);

// Stem: 3x3 stride-2 conv over 3 interleaved input channels + bias + ReLU6 for
// one output row. rows[ky] as for the depthwise kernels, pixel stride 3; the
// packed k index is ci * 9 + ky * 3 + kx (the file's (out, in, ky, kx) order).
typedef void mbv2_stem_ukernel_fn(size_t wo, size_t nc, const float* const* rows, const float* w,
                                  float* out, size_t out_pixel_stride);

// Head: sum[n] += sum_i relu6(bias[n] + sum_k a[i][k] * w[k][n]): the last 1x1
// conv of one row folded straight into the global-average-pool sum.
typedef void mbv2_head_ukernel_fn(size_t m, size_t nc, size_t kc, const float* a, size_t a_stride,
                                  const float* w, float* sum);

// ---- bf16 (docs/design.md, bf16) ----
// The bf16 expand, project and head kernels (registry-bf16.inc) have the
// float32 function types above: float32 activations in and out, bias, ReLU6
// and the residual in float32. Their weights are bf16, packed in pairs of k:
// a panel is [nr float32 biases (expand, head)][ceil(kc / 2) rows of nr
// pairs], pair (w[2p][n], w[2p + 1][n]) as two bf16 in 32 bits, even k in the
// low half and zero past kc, so a row of pairs is as wide as a float32 row;
// the projection's `w` points at pair row k0 / 2 (k0 even). The kernels round
// a to bf16 the same way (ukernels/bf16-common.h: to nearest even) and add
// each pair's two exact products to a float32 accumulator, the odd one first,
// as VDPBF16PS does. kc <= 16384.

// ---- int8 (docs/quantization.md) ----
// Activations are uint8 with a zero point, weights int8, symmetric per output
// channel; products accumulate in int32. Every int8 kernel ends in the same
// requantization, written out once in ukernels/quant-common.h (the scalar
// twins call it; the SIMD kernels do the same float32 operations in the same
// order, so every ISA gives the same bits):
//   v = float(acc) * scale[n]                 (acc: int32, bias included)
//   v = v + float(r - residual_zero_point) * residual_scale   (with a residual r)
//   out = uint8(rint(min(max(v, lo), hi)) + zero_point)        (rint: to nearest even)
// lo and hi are the output's range with its zero point subtracted, so ReLU6
// is a clamp: [0, min(255, rint(6 / s_out))] for an output of zero point 0.
struct mbv2_qu8_requant {
  float lo, hi;
  int32_t zero_point;
  const uint8_t* residual;  // null: none; else row i's channel n at residual[i * residual_stride + n]
  size_t residual_stride;
  float residual_scale;
  int32_t residual_zero_point;
};

// c[i][n] = requant(bias[n] + sum_k a[i][k] * w[k][n]) for i < m, n < nc: the
// expand, projection and head 1x1 convs. Packed panels of nr output channels
// (core/packing.h, pack_qgemm), panel_stride bytes apart, each
//   [nr int32 biases][nr float scales][ceil(kc / kr) groups of nr x kr int8]
// where group g holds w[g * kr + r][n] at byte (g * nr + n) * kr + r, zero past
// kc and past the last channel. Each a row must be readable up to kc rounded
// up to 4 bytes (the bytes past kc are multiplied by zero weights).
typedef void mbv2_qu8_gemm_ukernel_fn(size_t m, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
                                      const void* w, size_t panel_stride, const mbv2_qu8_requant* rq, uint8_t* c,
                                      size_t c_stride);

// Depthwise 3x3 + bias + requant (ReLU6 as the clamp) for one output row, as the
// float kernels' rows/pixel strides (in bytes). The input's zero point is 0
// (it is a ReLU6 output), so zero bytes are the padding. Packed tiles of nr
// channels, panel_stride bytes apart, each
//   [nr int32 biases][nr float scales][9 taps x nr int8 weights]   (tap = ky * 3 + kx)
typedef void mbv2_qu8_dwconv3x3s1_ukernel_fn(size_t wo, size_t channels, const uint8_t* const* rows,
                                             size_t in_pixel_stride, const void* w, size_t panel_stride,
                                             const mbv2_qu8_requant* rq, uint8_t* out, size_t out_pixel_stride);
typedef mbv2_qu8_dwconv3x3s1_ukernel_fn mbv2_qu8_dwconv3x3s2_ukernel_fn;

// The float32 stem's output (ReLU6 applied) to the int8 blocks' uint8 input:
//   y[i] = uint8(rint(min(max(x[i] * inv_scale, 0), hi)))   (rint: to nearest even)
// with inv_scale = float(1 / s) and hi = min(255, rint(6 / s)) for the stem
// output's scale s (its zero point is 0). x is finite.
typedef void mbv2_qu8_quantize_ukernel_fn(size_t n, const float* x, float inv_scale, float hi, uint8_t* y);

}  // extern "C"

#define MBV2_QUKERNEL(isa, op, name, nr, kr) extern "C" mbv2_qu8_##op##_ukernel_fn name;
#include "ukernels/registry-int8.inc"
#undef MBV2_QUKERNEL

#define MBV2_UKERNEL(isa, op, name, nr) extern "C" mbv2_##op##_ukernel_fn name;
#include "ukernels/registry.inc"
#undef MBV2_UKERNEL

#define MBV2_BF16KERNEL(isa, op, name, nr) extern "C" mbv2_##op##_ukernel_fn name;
#include "ukernels/registry-bf16.inc"
#undef MBV2_BF16KERNEL
