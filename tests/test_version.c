/* Black-box test of the version: gort_version() and the GORT_VERSION_*
 * macros of the header it was built with say the same. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <string.h>

TEST(version_macros_match_function) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", GORT_VERSION_MAJOR, GORT_VERSION_MINOR,
             GORT_VERSION_PATCH);
    const char *got = gort_version();
    CHECK(got != NULL);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "gort_version() = \"%s\", the header says %s\n", got, want);
    CHECK(strcmp(got, want) == 0);
    CHECK(gort_version() == got); /* one string, callable with no runtime */
}
