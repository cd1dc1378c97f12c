/*
 * version.c: gort_version, the library's version as a string, made from the
 * GORT_VERSION_* macros in gort.h so that the two cannot disagree.
 */
#include "runtime.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

#define VERSION STR(GORT_VERSION_MAJOR) "." STR(GORT_VERSION_MINOR) "." STR(GORT_VERSION_PATCH)

GORT_API const char *gort_version(void) { return VERSION; }
