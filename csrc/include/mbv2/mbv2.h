/* mbv2-engine C API: load an mbv2-engine weight file (.npz, docs/format.md) and
 * run MobileNetV2 on float32 images, with the same CPU core as the Python package.
 *
 *     mbv2_engine* engine = NULL;
 *     if (mbv2_engine_create_from_file("model.npz", NULL, &engine) != MBV2_STATUS_OK) {
 *       fprintf(stderr, "%s\n", mbv2_last_error_message());
 *       return 1;
 *     }
 *     mbv2_engine_run(engine, x, 1, h, w, MBV2_LAYOUT_NCHW, logits, num_classes);
 *     mbv2_engine_destroy(engine);
 *
 * Every function that can fail returns an mbv2_status and, on failure, sets a
 * per-thread message naming what was wrong (mbv2_last_error_message). A NULL
 * pointer argument is MBV2_STATUS_INVALID_ARGUMENT. One engine may be used by
 * many threads at once; only mbv2_engine_destroy must not overlap other calls.
 *
 * The header is C99; C++ hosts may prefer the RAII wrapper in mbv2.hpp. */
#ifndef MBV2_MBV2_H_
#define MBV2_MBV2_H_

#include <stddef.h>

#if defined(_WIN32)
#if defined(MBV2_BUILDING_LIBRARY)
#define MBV2_API __declspec(dllexport)
#else
#define MBV2_API __declspec(dllimport)
#endif
#else
#define MBV2_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The values of mbv2::Status in the C++ core (csrc/core/status.h). */
typedef enum mbv2_status {
  MBV2_STATUS_OK = 0,
  MBV2_STATUS_INVALID_ARGUMENT = 1,    /* a NULL pointer, a wrong buffer length, a bad option or input size */
  MBV2_STATUS_FILE_NOT_FOUND = 2,      /* the weight file does not exist */
  MBV2_STATUS_IO_ERROR = 3,            /* it exists but cannot be read */
  MBV2_STATUS_INVALID_FORMAT = 4,      /* not a valid mbv2-engine weight file */
  MBV2_STATUS_UNSUPPORTED_VERSION = 5, /* written by a newer format version than this library reads */
  MBV2_STATUS_UNSUPPORTED_ISA = 6,     /* the requested instruction set is unknown or not on this CPU */
  MBV2_STATUS_OUT_OF_MEMORY = 7,
  MBV2_STATUS_INTERNAL = 8, /* a bug in the engine */
  MBV2_STATUS_MAX_ENUM_ = 0x7fffffff /* not a status: makes every int a value of the type (see mbv2_layout) */
} mbv2_status;

typedef enum mbv2_layout {
  MBV2_LAYOUT_NCHW = 0, /* n x 3 x height x width */
  MBV2_LAYOUT_NHWC = 1, /* n x height x width x 3 */
  /* Not a layout: makes every int a value of the type, so that a wrong one a
   * host passes is refused as MBV2_STATUS_INVALID_ARGUMENT rather than being
   * undefined behaviour in the library's C++. */
  MBV2_LAYOUT_MAX_ENUM_ = 0x7fffffff
} mbv2_layout;

typedef struct mbv2_engine mbv2_engine;

typedef struct mbv2_engine_options {
  size_t threads;  /* worker threads per run, at most 256; 0 = one per hardware thread (at most 256) */
  /* kernel ISA: "auto" (the fastest this CPU runs), "ref", ...; NULL = "auto". Judged
   * against the file's precision: an int8 file also takes the int8-only ISAs
   * ("avxvnni", "amx", "neondot"). */
  const char* isa;
  /* "fp32", or "bf16": a float32 file's 1x1 convolutions and classifier in bf16
   * on AVX512-BF16 (MBV2_STATUS_UNSUPPORTED_ISA on a CPU without it); an int8
   * file runs in int8 and takes "fp32" only. NULL = "fp32". Fill the struct
   * with mbv2_engine_options_init first: later versions may add fields. */
  const char* dtype;
} mbv2_engine_options;

/* How the file says an image becomes the network's input: resize so that the
 * centre crop of the input size covers crop_fraction of the picture, crop,
 * scale to [0, 1], then (x - mean[c]) / std[c] per RGB channel. */
typedef struct mbv2_preprocess {
  double crop_fraction;
  double mean[3];
  double std[3];
} mbv2_preprocess;

/* "0.1.0": the library's version, also the Python package's. */
MBV2_API const char* mbv2_version(void);

/* A short, stable name for a status ("invalid format"); never NULL. */
MBV2_API const char* mbv2_status_string(mbv2_status status);

/* The message of the last failing call on this thread ("" if none yet). Valid
 * until the next failing call on this thread; successful calls leave it. */
MBV2_API const char* mbv2_last_error_message(void);

/* Defaults: threads 0, isa "auto", dtype "fp32". */
MBV2_API mbv2_status mbv2_engine_options_init(mbv2_engine_options* options);

/* Read and validate a weight file and repack it for the chosen kernels.
 * `options` may be NULL (the defaults). On success *engine owns the model;
 * on failure it is set to NULL. */
MBV2_API mbv2_status mbv2_engine_create_from_file(const char* path, const mbv2_engine_options* options,
                                                  mbv2_engine** engine);

/* The same from a weight file in memory; `data` need only live during the call. */
MBV2_API mbv2_status mbv2_engine_create_from_memory(const void* data, size_t size,
                                                    const mbv2_engine_options* options, mbv2_engine** engine);

/* Frees the engine; NULL is allowed. No other call on it may be running. */
MBV2_API void mbv2_engine_destroy(mbv2_engine* engine);

/* The input size the model was made for (the file's input_size); run() takes any size >= 32. */
MBV2_API mbv2_status mbv2_engine_get_input_size(const mbv2_engine* engine, size_t* height, size_t* width);

MBV2_API mbv2_status mbv2_engine_get_num_classes(const mbv2_engine* engine, size_t* num_classes);

MBV2_API mbv2_status mbv2_engine_get_preprocess(const mbv2_engine* engine, mbv2_preprocess* preprocess);

/* Class `index`'s name, or NULL when the file carries no labels. The string
 * lives as long as the engine. */
MBV2_API mbv2_status mbv2_engine_get_label(const mbv2_engine* engine, size_t index, const char** label);

/* The ISA whose kernels the engine runs ("auto" resolved): for an int8 file
 * (format version 3) the int8 kernels' ISA. Lives as long as the engine. */
MBV2_API mbv2_status mbv2_engine_get_isa(const mbv2_engine* engine, const char** isa);

/* What the blocks compute in: "float32", or "int8" for a quantized file,
 * which runs unchanged through every other function. A static string. */
MBV2_API mbv2_status mbv2_engine_get_precision(const mbv2_engine* engine, const char** precision);

/* Logits for n normalised images of height x width (each side 32..8192):
 * `out` receives n x num_classes floats and out_len must be exactly that.
 * An input holding NaN or an infinity fails with MBV2_STATUS_INVALID_ARGUMENT
 * (the network's ReLU6 would turn it into a plausible number); `out` is then
 * unspecified. Thread-safe. */
MBV2_API mbv2_status mbv2_engine_run(const mbv2_engine* engine, const float* input, size_t n, size_t height,
                                     size_t width, mbv2_layout layout, float* out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* MBV2_MBV2_H_ */
