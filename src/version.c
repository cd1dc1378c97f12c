/*
 * version.c: gort_version, the library's version as a string, made from the
 * GORT_VERSION_* macros in gort.h so that the two cannot disagree.
 */
#include "runtime.h"

#define GORT_STR_(x) #x
#define GORT_STR(x)  GORT_STR_(x)

static const char version[] =
    GORT_STR(GORT_VERSION_MAJOR) "." GORT_STR(GORT_VERSION_MINOR) "." GORT_STR(GORT_VERSION_PATCH);

GORT_API const char *gort_version(void) {
    return version;
}
