/* The C API from C99 (-std=c99 -pedantic -Werror): the header must compile as
 * plain C, and a C host can load, query, run and read an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbv2/mbv2.h"

static int check(mbv2_status status, const char* what) {
  if (status == MBV2_STATUS_OK) return 0;
  fprintf(stderr, "%s: %s: %s\n", what, mbv2_status_string(status), mbv2_last_error_message());
  return 1;
}

int main(void) {
  const char* dir = getenv("MBV2_FIXTURE_DIR");
  char path[4096];
  mbv2_engine* engine = NULL;
  size_t classes = 0, i;
  float* image;
  float* logits;
  int failed = 0;
  if (dir == NULL) return 2;
  snprintf(path, sizeof path, "%s/valid_0.35.npz", dir);
  if (check(mbv2_engine_create_from_file(path, NULL, &engine), "create")) return 1;
  failed |= check(mbv2_engine_get_num_classes(engine, &classes), "num_classes");
  image = calloc(3 * 32 * 32, sizeof *image);
  logits = calloc(classes, sizeof *logits);
  failed |= check(mbv2_engine_run(engine, image, 1, 32, 32, MBV2_LAYOUT_NCHW, logits, classes), "run");
  for (i = 0; i < classes; i++) printf("%g ", logits[i]);
  printf("\n");
  if (mbv2_engine_run(engine, image, 1, 32, 32, MBV2_LAYOUT_NCHW, logits, classes + 1) !=
          MBV2_STATUS_INVALID_ARGUMENT ||
      strstr(mbv2_last_error_message(), "out_len") == NULL) {
    fprintf(stderr, "a wrong out_len was not refused\n");
    failed = 1;
  }
  free(image);
  free(logits);
  mbv2_engine_destroy(engine);
  return failed;
}
